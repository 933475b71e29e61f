/*
 * cmd.h - the subcommands.  Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit status:
 *   0 success, 1 some file failed, 2 usage or environment error,
 *   128+N interrupted by signal N.
 */
#ifndef CMD_H
#define CMD_H

int cmd_compile(int argc, const char **argv);
int cmd_compileall(int argc, const char **argv);
int cmd_check(int argc, const char **argv);
int cmd_clean(int argc, const char **argv);
int cmd_canon(int argc, const char **argv);
int cmd_cache(int argc, const char **argv);

#endif
