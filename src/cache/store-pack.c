/*
 * store-pack.c - the disk store's packs (see store-pack.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* pwritev (macOS: 11 and later) */
#include "store-pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "store-disk.h"
#include "strbuf.h"
#include "tempfile.h"
#include "trustdir.h"
#include "util.h"
#include "banned.h"

#define PACK_MAGIC "PREPYCP\n"
#define PACK_VERSION 1
#define PACK_SUM_LEN 16
#define PACK_ENTRY_MAX (DISK_HEADER_LEN + DISK_ENTRY_MAX_BODY)

/* Where an entry is: which pack, and its bytes there. */
struct loc {
	unsigned char key[CACHE_KEY_LEN];
	uint32_t file; /* index in files[] plus one; 0: an empty slot */
	uint64_t off, size;
};

struct pack_file {
	int fd;
	time_t mtime;
	atomic_int touched; /* this run set its mtime already */
};

struct packs {
	char *dir;                /* DIR/v1/pk */
	const struct trust *trust;
	int writable;
	mode_t mask;
	pthread_mutex_t lock;     /* everything below */
	struct pack_file *files;
	size_t nfiles, afiles;
	struct loc *slots;        /* open addressing by the key's first bytes */
	size_t nslots, nused;
	/* this run's packs: the last one takes entries until it holds max_bytes */
	struct writer *wr;
	size_t nwr, awr;
	uint64_t max_bytes, min_bytes;
	int failed;               /* set once: nothing more added, this run's packs dropped */
	int off;                  /* DIR/v1/pk is not ours (warned): no pack read or written */
	int loaded;               /* the packs were read (at the first lookup or add) */
};

/* A pack this run writes. */
struct writer {
	struct temp_file t;
	size_t file;              /* its index in files[] plus one */
	uint64_t end;             /* bytes reserved in it */
	struct loc *mine;         /* what it holds, for its index */
	size_t nmine, amine;
};

/* ---- the table ---------------------------------------------------------- */

static size_t slot_of(const struct packs *p, const unsigned char *key)
{
	return (size_t)get_le64(key) & (p->nslots - 1);
}

/* The slot holding `key`, or the empty one where it would go. */
static struct loc *find_slot(const struct packs *p, const unsigned char *key)
{
	size_t i = slot_of(p, key);

	while (p->slots[i].file && memcmp(p->slots[i].key, key, CACHE_KEY_LEN))
		i = (i + 1) & (p->nslots - 1);
	return &p->slots[i];
}

/* Add `l` unless its key is there (the first pack read wins); under the lock. */
static void table_add(struct packs *p, const struct loc *l)
{
	struct loc *s;

	if (2 * (p->nused + 1) > p->nslots) {
		struct loc *old = p->slots;
		size_t i, n = p->nslots;

		p->nslots = n ? 2 * n : 1024;
		p->slots = xcalloc(p->nslots, sizeof(*p->slots));
		for (i = 0; i < n; i++)
			if (old[i].file)
				*find_slot(p, old[i].key) = old[i];
		free(old);
	}
	s = find_slot(p, l->key);
	if (!s->file) {
		*s = *l;
		p->nused++;
	}
}

static void load_packs(struct packs *p);

/* Copy `key`'s location and its pack's descriptor; 0 when no pack holds it. */
static int lookup(struct packs *p, const unsigned char *key, struct loc *out, int *fd)
{
	struct loc *s;
	int found = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->loaded)
		load_packs(p);
	if (p->nslots) {
		s = find_slot(p, key);
		if (s->file) {
			*out = *s;
			*fd = p->files[s->file - 1].fd;
			found = 1;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

/* ---- reading ------------------------------------------------------------ */

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *b = buf;

	while (len) {
		ssize_t n = pread(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void index_sum(const unsigned char *index, size_t len, const unsigned char *trailer,
		      unsigned char out[PACK_SUM_LEN])
{
	struct blake2b s;

	blake2b_init(&s, PACK_SUM_LEN);
	blake2b_update(&s, index, len);
	blake2b_update(&s, trailer, PACK_TRAILER_LEN - PACK_SUM_LEN);
	blake2b_final(&s, out);
}

/*
 * The index of the pack on `fd` of `size` bytes, every bound checked: its
 * record count, the records in *index (a new buffer), or -1 when damaged.
 */
static long long read_index(int fd, uint64_t size, unsigned char **index, uint64_t *data_end)
{
	unsigned char t[PACK_TRAILER_LEN], sum[PACK_SUM_LEN], *ix;
	uint64_t n, at, i;

	*index = NULL;
	if (size < PACK_TRAILER_LEN || pread_full(fd, t, sizeof(t), size - PACK_TRAILER_LEN) < 0)
		return -1;
	n = get_le64(t + 16);
	at = get_le64(t + 24);
	if (memcmp(t, PACK_MAGIC, 8) || get_le32(t + 8) != PACK_VERSION || get_le32(t + 12) ||
	    n > (size - PACK_TRAILER_LEN) / (PACK_RECORD_LEN + DISK_HEADER_LEN) ||
	    at != size - PACK_TRAILER_LEN - n * PACK_RECORD_LEN)
		return -1;
	ix = xmalloc(n * PACK_RECORD_LEN + 1);
	if (pread_full(fd, ix, n * PACK_RECORD_LEN, at) < 0)
		goto bad;
	index_sum(ix, n * PACK_RECORD_LEN, t, sum);
	if (memcmp(sum, t + PACK_TRAILER_LEN - PACK_SUM_LEN, PACK_SUM_LEN))
		goto bad;
	for (i = 0; i < n; i++) {
		uint64_t off = get_le64(ix + i * PACK_RECORD_LEN + 32);
		uint64_t len = get_le64(ix + i * PACK_RECORD_LEN + 40);

		if (len < DISK_HEADER_LEN || len > PACK_ENTRY_MAX || off > at || len > at - off)
			goto bad;
	}
	*index = ix;
	*data_end = at;
	return (long long)n;
bad:
	free(ix);
	return -1;
}

/* Read entry `l` from `fd` and check it as a loose one: 1 with its parts appended, else 0. */
static int read_entry(int fd, const struct loc *l, struct strbuf *code, struct strbuf *warnings)
{
	unsigned char h[DISK_HEADER_LEN];
	size_t base = code->len, body = (size_t)(l->size - DISK_HEADER_LEN);
	unsigned char *b;

	strbuf_grow(code, body);
	b = (unsigned char *)code->buf + base;
	if (pread_full(fd, h, sizeof(h), l->off) < 0 ||
	    pread_full(fd, b, body, l->off + DISK_HEADER_LEN) < 0) {
		strbuf_setlen(code, base);
		return 0;
	}
	return disk_entry_take(h, (size_t)l->size, l->key, code, base, warnings) == 0;
}

long long pack_check(int fd, const struct stat *st, int deep)
{
	struct strbuf code = STRBUF_INIT, warnings = STRBUF_INIT;
	unsigned char *ix = NULL;
	uint64_t end;
	long long n = S_ISREG(st->st_mode) ? read_index(fd, (uint64_t)st->st_size, &ix, &end) : -1;
	long long i;

	for (i = 0; deep && i < n; i++) {
		struct loc l;

		memcpy(l.key, ix + i * PACK_RECORD_LEN, CACHE_KEY_LEN);
		l.off = get_le64(ix + i * PACK_RECORD_LEN + 32);
		l.size = get_le64(ix + i * PACK_RECORD_LEN + 40);
		strbuf_reset(&code);
		strbuf_reset(&warnings);
		if (!read_entry(fd, &l, &code, &warnings))
			n = -1;
	}
	free(ix);
	strbuf_release(&code);
	strbuf_release(&warnings);
	return n;
}

/* Remove a damaged pack, unless another file took its name since (`st`: what was read). */
static void remove_damaged_pack(const char *path, const struct stat *st)
{
	struct stat now;

	if (lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino &&
	    unlink(path) == 0)
		trace("cache: removed damaged pack '%s'", path);
}

static int is_pack_name(const char *name)
{
	size_t i;

	for (i = 0; i < PACK_NAME_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return name[PACK_NAME_LEN] == '\0';
}

/* Read pack `path` into the table (not used when not ours, removed when damaged). */
static void load_pack(struct packs *p, const char *path, int *warned)
{
	struct strbuf why = STRBUF_INIT;
	unsigned char *ix = NULL;
	struct pack_file *pf;
	struct stat st;
	uint64_t end;
	long long n, i;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	if (S_ISREG(st.st_mode) && trust_stat_check(p->trust, &st, &why)) {
		if (!(*warned)++)
			warning("not using the cache pack '%s': it %s", path, why.buf);
		goto out;
	}
	if ((n = S_ISREG(st.st_mode) ? read_index(fd, (uint64_t)st.st_size, &ix, &end) : -1) < 0) {
		if (p->writable && S_ISREG(st.st_mode))
			remove_damaged_pack(path, &st);
		goto out;
	}
	ALLOC_GROW(p->files, p->nfiles + 1, p->afiles);
	pf = &p->files[p->nfiles++];
	pf->fd = fd;
	pf->mtime = st.st_mtime;
	atomic_init(&pf->touched, 0);
	fd = -1;
	for (i = 0; i < n; i++) {
		struct loc l;

		memcpy(l.key, ix + i * PACK_RECORD_LEN, CACHE_KEY_LEN);
		l.off = get_le64(ix + i * PACK_RECORD_LEN + 32);
		l.size = get_le64(ix + i * PACK_RECORD_LEN + 40);
		l.file = (uint32_t)p->nfiles;
		table_add(p, &l);
	}
	trace("cache: pack '%s': %lld entries", path, n);
out:
	if (fd >= 0)
		close(fd);
	free(ix);
	strbuf_release(&why);
}

/* Whether DIR/v1/pk may be used (ours, as a shard must be); warned once when not. */
static int dir_trusted(const struct packs *p, int *warned)
{
	struct strbuf why = STRBUF_INIT;
	struct stat st;
	int ok = stat(p->dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		 !trust_stat_check(p->trust, &st, &why);

	if (!ok && why.len && !(*warned)++)
		warning("not using the cache packs in '%s': it %s", p->dir, why.buf);
	strbuf_release(&why);
	return ok;
}

struct packs *packs_open(const char *dir, const struct trust *trust, int writable, mode_t mask,
			 uint64_t max_bytes, uint64_t min_bytes)
{
	struct packs *p = xcalloc(1, sizeof(*p));

	p->dir = xstrfmt("%s/v1/" PACK_DIR, dir);
	p->trust = trust;
	p->writable = writable;
	p->mask = mask;
	p->max_bytes = max_bytes;
	p->min_bytes = min_bytes;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

/*
 * Read every pack into the table, once, under the lock: at the first
 * lookup or add, so that a run that looks nothing up (a no-op) reads none.
 */
static void load_packs(struct packs *p)
{
	struct dirent *de;
	int warned = 0;
	DIR *d;

	p->loaded = 1;
	if (!dir_trusted(p, &warned)) {
		p->off = warned; /* not ours: nothing written there either */
		return;
	}
	if (!(d = opendir(p->dir)))
		return;
	while ((de = readdir(d))) {
		char *path;

		if (!is_pack_name(de->d_name))
			continue;
		if (p->nfiles == PACK_MAX_FILES) {
			trace("cache: more than %d packs in '%s': the others are not read",
			      PACK_MAX_FILES, p->dir);
			break;
		}
		path = xstrfmt("%s/%s", p->dir, de->d_name);
		load_pack(p, path, &warned);
		free(path);
	}
	closedir(d);
}

int packs_get(struct packs *p, const unsigned char key[CACHE_KEY_LEN], struct strbuf *code,
	      struct strbuf *warnings)
{
	struct pack_file *pf;
	struct loc l;
	int fd;

	if (!lookup(p, key, &l, &fd) || !read_entry(fd, &l, code, warnings))
		return 0;
	/* recency for eviction, as a loose entry's; this run's own pack is new */
	pthread_mutex_lock(&p->lock);
	pf = &p->files[l.file - 1];
	if (p->writable && pf->mtime < time(NULL) - DISK_TOUCH_AFTER &&
	    !atomic_exchange(&pf->touched, 1)) /* (this run's own are new: marked touched) */
		futimens(pf->fd, NULL);
	pthread_mutex_unlock(&p->lock);
	return 1;
}

int packs_has(struct packs *p, const unsigned char key[CACHE_KEY_LEN])
{
	struct loc l;
	int fd;

	return lookup(p, key, &l, &fd);
}

/* ---- writing ------------------------------------------------------------ */

/*
 * Start another pack of this run (and DIR/v1/pk); under the lock.  0; 1
 * when the directory is not ours (warned: packs are off); -1 with errno
 * and *what.
 */
static int start_pack(struct packs *p, const char **what)
{
	mode_t mode = trust_dir_mode(p->trust);
	struct writer *w;
	char *path;
	int warned = 0, rc;

	if (!p->nwr) {
		if (mkdir(p->dir, mode & 0777) == 0)
			chmod(p->dir, mode); /* exactly: the umask does not narrow it */
		else if (errno != EEXIST) {
			*what = "cannot create the directory";
			return -1;
		}
		if (!dir_trusted(p, &warned)) {
			p->off = 1;
			return 1;
		}
	}
	ALLOC_GROW(p->wr, p->nwr + 1, p->awr);
	w = &p->wr[p->nwr];
	memset(w, 0, sizeof(*w));
	path = xstrfmt("%s/new", p->dir);
	rc = temp_open(&w->t, path, trust_file_mode(p->trust), p->mask, what);
	free(path);
	if (rc < 0)
		return -1;
	p->nwr++;
	ALLOC_GROW(p->files, p->nfiles + 1, p->afiles);
	p->files[p->nfiles].fd = w->t.fd;
	p->files[p->nfiles].mtime = time(NULL);
	atomic_init(&p->files[p->nfiles].touched, 1);
	w->file = ++p->nfiles;
	return 0;
}

static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n) {
		ssize_t w = pwritev(fd, iov, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (uint64_t)w;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int packs_add(struct packs *p, const unsigned char key[CACHE_KEY_LEN], const struct iovec *entry,
	      int n, const char **what, uint64_t *bytes)
{
	struct iovec iov[PACK_ENTRY_PARTS];
	struct writer *w;
	struct loc l;
	size_t k;
	int fd, rc, i;

	memcpy(l.key, key, CACHE_KEY_LEN);
	l.size = 0;
	for (i = 0; i < n && i < PACK_ENTRY_PARTS; i++) {
		iov[i] = entry[i]; /* (a copy: pwritev_full() moves along it) */
		l.size += entry[i].iov_len;
	}
	n = i;
	pthread_mutex_lock(&p->lock);
	if (!p->loaded)
		load_packs(p);
	w = p->nwr ? &p->wr[p->nwr - 1] : NULL;
	/* a full pack is left for the next (one entry at least in each) */
	rc = p->off ? 1 : p->failed ? -1
	     : w && (!w->end || w->end + l.size <= p->max_bytes) ? 0 : start_pack(p, what);
	if (rc) {
		if (p->failed)
			*what = "cannot write", errno = EIO;
		p->failed |= rc < 0;
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	k = p->nwr - 1;
	w = &p->wr[k];
	l.off = w->end;
	l.file = (uint32_t)w->file;
	*bytes = l.size + PACK_RECORD_LEN + (l.off ? 0 : PACK_TRAILER_LEN);
	w->end += l.size;
	fd = w->t.fd;
	pthread_mutex_unlock(&p->lock);

	rc = pwritev_full(fd, iov, n, l.off);
	pthread_mutex_lock(&p->lock);
	if (rc < 0) {
		*what = "cannot write";
		*bytes = 0;
		p->failed = 1;
	} else {
		/* found by lookups only once its bytes are there */
		table_add(p, &l);
		w = &p->wr[k]; /* (wr[] may have moved meanwhile) */
		ALLOC_GROW(w->mine, w->nmine + 1, w->amine);
		w->mine[w->nmine++] = l;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int by_key(const void *a, const void *b)
{
	return memcmp(((const struct loc *)a)->key, ((const struct loc *)b)->key, CACHE_KEY_LEN);
}

/* Write pack w's index and trailer, and rename it to its name: 0, or -1 with *what. */
static int publish(struct packs *p, struct writer *w, const char **what)
{
	size_t i, len = w->nmine * PACK_RECORD_LEN;
	unsigned char *buf = xmalloc(len + PACK_TRAILER_LEN), *t = buf + len, *sum;
	char name[PACK_NAME_LEN + 1], *path;
	struct iovec iov;
	int rc;

	qsort(w->mine, w->nmine, sizeof(*w->mine), by_key);
	for (i = 0; i < w->nmine; i++) {
		memcpy(buf + i * PACK_RECORD_LEN, w->mine[i].key, CACHE_KEY_LEN);
		put_le64(buf + i * PACK_RECORD_LEN + 32, w->mine[i].off);
		put_le64(buf + i * PACK_RECORD_LEN + 40, w->mine[i].size);
	}
	memcpy(t, PACK_MAGIC, 8);
	put_le32(t + 8, PACK_VERSION);
	put_le32(t + 12, 0);
	put_le64(t + 16, w->nmine);
	put_le64(t + 24, w->end);
	sum = t + PACK_TRAILER_LEN - PACK_SUM_LEN;
	index_sum(buf, len, t, sum);
	path = xstrfmt("%s/%s", p->dir, hex_encode(sum, PACK_SUM_LEN, name));
	iov.iov_base = buf;
	iov.iov_len = len + PACK_TRAILER_LEN;
	if (pwritev_full(w->t.fd, &iov, 1, w->end) < 0) {
		*what = "cannot write";
		temp_drop(&w->t);
		rc = -1;
	} else {
		rc = temp_publish(&w->t, path, what);
	}
	if (rc == 0)
		trace("cache: pack '%s': %zu entries stored", path, w->nmine);
	free(path);
	free(buf);
	return rc;
}

/* Hand each entry of pack w to unpack(), to be stored loose. */
static void unpack_all(struct writer *w,
		       void (*unpack)(void *, const unsigned char *, const void *, size_t), void *arg)
{
	struct strbuf entry = STRBUF_INIT;
	size_t i;

	for (i = 0; i < w->nmine; i++) {
		strbuf_reset(&entry);
		strbuf_grow(&entry, (size_t)w->mine[i].size);
		if (pread_full(w->t.fd, entry.buf, (size_t)w->mine[i].size, w->mine[i].off) == 0)
			unpack(arg, w->mine[i].key, entry.buf, (size_t)w->mine[i].size);
	}
	trace("cache: %zu entries stored loose (a pack of %llu bytes is not kept)", w->nmine,
	      (unsigned long long)w->end);
	strbuf_release(&entry);
}

void packs_close(struct packs *p,
		 void (*unpack)(void *arg, const unsigned char key[CACHE_KEY_LEN],
				const void *entry, size_t size),
		 void *arg)
{
	const char *what = "";
	int warned = 0;
	size_t i;

	for (i = 0; i < p->nwr; i++) {
		struct writer *w = &p->wr[i];

		p->files[w->file - 1].fd = -1; /* closed by publish() or temp_drop() */
		if (!p->failed && w->nmine && w->end < p->min_bytes)
			unpack_all(w, unpack, arg);
		if (p->failed || !w->nmine || w->end < p->min_bytes)
			temp_drop(&w->t);
		else if (publish(p, w, &what) < 0 && !warned++)
			warning("cache: %s '%s' (%s): the entries of this run's pack are not kept",
				what, p->dir, strerror(errno));
		free(w->mine);
	}
	for (i = 0; i < p->nfiles; i++)
		if (p->files[i].fd >= 0)
			close(p->files[i].fd);
	pthread_mutex_destroy(&p->lock);
	free(p->files);
	free(p->slots);
	free(p->wr);
	free(p->dir);
	free(p);
}

char *pack_path(const char *dir, const unsigned char id[PACK_NAME_LEN / 2])
{
	char name[PACK_NAME_LEN + 1];

	return xstrfmt("%s/v1/" PACK_DIR "/%s", dir, hex_encode(id, PACK_NAME_LEN / 2, name));
}
