import builtins
def compile(*args, **kwargs):
    raise RuntimeError("SABOTAGE: compile() of a process that ran the caller's "
                       "sitecustomize/usercustomize")
builtins.compile = compile
