// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Sync planning: snapshot + dest state -> ordered guest operations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sync_plan.h"

#define SYMLINK_MODE	0777

/* '/' sorts before every other byte, so "a" < "a/b" < "a-b" < "ab". */
static int path_cmp_tree(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a;
	const unsigned char *y = (const unsigned char *)b;

	for (; *x && *x == *y; x++, y++)
		;
	if (*x == *y)
		return 0;
	if (!*x)
		return -1;
	if (!*y)
		return 1;
	if (*x == '/')
		return -1;
	if (*y == '/')
		return 1;
	return *x < *y ? -1 : 1;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct snap_entry *x = a, *y = b;

	return path_cmp_tree(x->path, y->path);
}

void sync_snapshot_sort(struct vol_snapshot *s)
{
	if (s->n > 1)
		qsort(s->entries, s->n, sizeof(*s->entries), entry_cmp);
}

void vol_snapshot_free(struct vol_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->entries[i].path);
		free(s->entries[i].target);
	}
	free(s->entries);
	free(s->data_target);
	memset(s, 0, sizeof(*s));
}

bool sync_is_ts_name(const char *name)
{
	if (!name || strncmp(name, "..", 2) != 0 || !name[2])
		return false;
	if (strchr(name, '/'))
		return false;
	if (strncmp(name, SYNC_DATA_LINK, strlen(SYNC_DATA_LINK)) == 0)
		return false;
	return strcmp(name, "...") != 0;
}

/* Relative, no empty, "." or ".." components. */
static bool rel_path_ok(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/')
		return false;
	while (*c) {
		const char *end = strchrnul(c, '/');
		size_t len = end - c;

		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = *end ? end + 1 : end;
		if (*end && !*c)
			return false;	/* trailing '/' */
	}
	return true;
}

/* ---- dest state ---------------------------------------------------------- */

static int dest_find_idx(const struct dest_state *st, const char *path,
			 size_t *pos)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->entries[mid].path, path);

		if (c == 0) {
			*pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

const struct dest_entry *dest_state_find(const struct dest_state *st,
					 const char *path)
{
	size_t pos;

	if (!st || !dest_find_idx(st, path, &pos))
		return NULL;
	return &st->entries[pos];
}

static void dest_entry_clear(struct dest_entry *e)
{
	free(e->path);
	free(e->target);
	memset(e, 0, sizeof(*e));
}

void dest_state_clear(struct dest_state *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		dest_entry_clear(&st->entries[i]);
	free(st->entries);
	for (i = 0; i < st->n_ts; i++)
		free(st->ts_dirs[i]);
	free(st->ts_dirs);
	free(st->data_target);
	memset(st, 0, sizeof(*st));
}

size_t dest_state_stale_dirs(const struct dest_state *st)
{
	size_t i, n = 0;

	for (i = 0; i < st->n_ts; i++)
		if (!st->data_target || strcmp(st->ts_dirs[i], st->data_target))
			n++;
	return n;
}

static bool ts_known(const struct dest_state *st, const char *ts)
{
	size_t i;

	for (i = 0; i < st->n_ts; i++)
		if (strcmp(st->ts_dirs[i], ts) == 0)
			return true;
	return false;
}

static int ts_add(struct dest_state *st, const char *ts)
{
	char **v;

	if (ts_known(st, ts))
		return 0;
	v = realloc(st->ts_dirs, (st->n_ts + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	st->ts_dirs = v;
	v[st->n_ts] = strdup(ts);
	if (!v[st->n_ts])
		return -ENOMEM;
	st->n_ts++;
	return 0;
}

/*
 * Once "..data" moved, entries under older "..<ts>" dirs describe files no
 * user can reach any more; only the dir names are kept (stale count).
 */
static void prune_old_ts(struct dest_state *st)
{
	size_t i, j = 0;

	for (i = 0; i < st->n; i++) {
		struct dest_entry *e = &st->entries[i];
		char *slash = strchr(e->path, '/');
		bool old = false;

		if (slash) {
			*slash = '\0';
			old = sync_is_ts_name(e->path) && st->data_target &&
			      strcmp(e->path, st->data_target) != 0;
			*slash = '/';
		}
		if (old) {
			dest_entry_clear(e);
			continue;
		}
		st->entries[j++] = *e;
	}
	st->n = j;
}

static enum snap_type op_type(enum plan_kind k)
{
	switch (k) {
	case PLAN_MKDIR:
		return SNAP_DIR;
	case PLAN_FILE:
		return SNAP_FILE;
	default:
		return SNAP_SYMLINK;
	}
}

int dest_state_apply(struct dest_state *st, const struct plan_op *op)
{
	struct dest_entry *e;
	char *path = NULL, *target = NULL;
	size_t pos;

	path = strdup(op->dst);
	if (op->target)
		target = strdup(op->target);
	if (!path || (op->target && !target))
		goto nomem;
	if (!dest_find_idx(st, op->dst, &pos)) {
		if (st->n == st->cap) {
			size_t cap = st->cap ? st->cap * 2 : 16;
			struct dest_entry *v = realloc(st->entries,
						       cap * sizeof(*v));

			if (!v)
				goto nomem;
			st->entries = v;
			st->cap = cap;
		}
		memmove(&st->entries[pos + 1], &st->entries[pos],
			(st->n - pos) * sizeof(*st->entries));
		memset(&st->entries[pos], 0, sizeof(*st->entries));
		st->n++;
	}
	e = &st->entries[pos];
	dest_entry_clear(e);
	e->path = path;
	e->target = target;
	e->type = op_type(op->kind);
	e->mode = op->mode;
	e->size = op->size;
	memcpy(e->hash, op->hash, SYNC_HASH_LEN);

	if (op->kind == PLAN_MKDIR && sync_is_ts_name(op->dst) &&
	    ts_add(st, op->dst) < 0)
		return -ENOMEM;
	if (op->kind == PLAN_SYMLINK && strcmp(op->dst, SYNC_DATA_LINK) == 0 &&
	    sync_is_ts_name(op->target)) {
		char *t = strdup(op->target);

		if (!t || ts_add(st, op->target) < 0) {
			free(t);
			return -ENOMEM;
		}
		free(st->data_target);
		st->data_target = t;
		prune_old_ts(st);
	}
	return 0;
nomem:
	free(path);
	free(target);
	return -ENOMEM;
}

/* ---- plan ------------------------------------------------------------------ */

void sync_plan_free(struct sync_plan *plan)
{
	size_t i;

	if (!plan)
		return;
	for (i = 0; i < plan->n; i++) {
		free(plan->ops[i].src);
		free(plan->ops[i].dst);
		free(plan->ops[i].target);
	}
	free(plan->ops);
	memset(plan, 0, sizeof(*plan));
}

static bool guest_has(const struct dest_state *st, const struct plan_op *op)
{
	const struct dest_entry *e = dest_state_find(st, op->dst);

	if (!e || e->type != op_type(op->kind))
		return false;
	switch (op->kind) {
	case PLAN_MKDIR:
		return e->mode == op->mode;
	case PLAN_FILE:
		return e->mode == op->mode && e->size == op->size &&
		       memcmp(e->hash, op->hash, SYNC_HASH_LEN) == 0;
	default:
		return e->target && strcmp(e->target, op->target) == 0;
	}
}

/* Takes ownership of dst (and src/target) whatever happens. */
static int plan_push(struct sync_plan *plan, const struct dest_state *st,
		     struct plan_op *op)
{
	if (!op->dst || (op->kind == PLAN_FILE && !op->src) ||
	    (op->kind == PLAN_SYMLINK && !op->target))
		goto nomem;
	if (st && guest_has(st, op)) {
		plan->skipped++;
		free(op->src);
		free(op->dst);
		free(op->target);
		return 0;
	}
	if (plan->n == plan->cap) {
		size_t cap = plan->cap ? plan->cap * 2 : 16;
		struct plan_op *v = realloc(plan->ops, cap * sizeof(*v));

		if (!v)
			goto nomem;
		plan->ops = v;
		plan->cap = cap;
	}
	if (op->kind == PLAN_FILE) {
		plan->files++;
		plan->bytes += op->size;
	}
	plan->ops[plan->n++] = *op;
	return 0;
nomem:
	free(op->src);
	free(op->dst);
	free(op->target);
	return -ENOMEM;
}

static char *join_rel(const char *prefix, const char *path)
{
	char *s;

	if (!prefix || !*prefix)
		return strdup(path);
	if (asprintf(&s, "%s/%s", prefix, path) < 0)
		return NULL;
	return s;
}

/* One payload entry at prefix/path in both the volume and the dest. */
static int plan_entry(struct sync_plan *plan, const struct dest_state *st,
		      const char *prefix, const struct snap_entry *e)
{
	struct plan_op op = {
		.mode = e->mode, .uid = e->uid, .gid = e->gid,
	};

	op.dst = join_rel(prefix, e->path);
	switch (e->type) {
	case SNAP_DIR:
		op.kind = PLAN_MKDIR;
		break;
	case SNAP_FILE:
		op.kind = PLAN_FILE;
		op.src = join_rel(prefix, e->path);
		op.size = e->size;
		memcpy(op.hash, e->hash, SYNC_HASH_LEN);
		break;
	case SNAP_SYMLINK:
		op.kind = PLAN_SYMLINK;
		op.mode = SYMLINK_MODE;
		op.target = e->target ? strdup(e->target) : NULL;
		break;
	default:
		free(op.dst);
		return -EINVAL;
	}
	return plan_push(plan, st, &op);
}

static int plan_mkdir(struct sync_plan *plan, const struct dest_state *st,
		      const char *dst, uint32_t mode)
{
	struct plan_op op = { .kind = PLAN_MKDIR, .mode = mode };

	op.dst = strdup(dst);
	return plan_push(plan, st, &op);
}

static int plan_link(struct sync_plan *plan, const struct dest_state *st,
		     const char *dst, const char *target)
{
	struct plan_op op = { .kind = PLAN_SYMLINK, .mode = SYMLINK_MODE };

	op.dst = strdup(dst);
	op.target = strdup(target);
	return plan_push(plan, st, &op);
}

static int plan_kubelet(const struct vol_snapshot *snap,
			const struct dest_state *st, struct sync_plan *plan)
{
	const char *ts = snap->data_target;
	size_t i;
	int err;

	if (!sync_is_ts_name(ts))
		return -EINVAL;
	err = plan_mkdir(plan, st, ts, snap->payload_mode);
	for (i = 0; !err && i < snap->n; i++)
		err = plan_entry(plan, st, ts, &snap->entries[i]);
	if (!err)
		err = plan_link(plan, st, SYNC_DATA_LINK, ts);
	for (i = 0; !err && i < snap->n; i++) {
		const char *name = snap->entries[i].path;
		char *target;

		/* Only top-level keys get links; ".."-names are reserved. */
		if (strchr(name, '/') || strncmp(name, "..", 2) == 0)
			continue;
		if (asprintf(&target, "%s/%s", SYNC_DATA_LINK, name) < 0)
			return -ENOMEM;
		err = plan_link(plan, st, name, target);
		free(target);
	}
	if (err)
		return err;
	plan->stale_dirs = st ? st->n_ts : 0;
	if (st && ts_known(st, ts))
		plan->stale_dirs--;
	return 0;
}

int sync_plan_build(const struct vol_snapshot *snap,
		    const struct dest_state *st, struct sync_plan *plan)
{
	size_t i;
	int err;

	memset(plan, 0, sizeof(*plan));
	for (i = 0; i < snap->n; i++) {
		const struct snap_entry *e = &snap->entries[i];

		if (!e->path || !rel_path_ok(e->path) ||
		    (e->type == SNAP_SYMLINK && !e->target))
			return -EINVAL;
		if (i && path_cmp_tree(snap->entries[i - 1].path, e->path) >= 0)
			return -EINVAL;	/* unsorted or duplicate */
	}
	err = plan_mkdir(plan, st, "", snap->root_mode);
	if (!err && snap->kind == VOL_KUBELET)
		err = plan_kubelet(snap, st, plan);
	for (i = 0; !err && snap->kind == VOL_PLAIN && i < snap->n; i++)
		err = plan_entry(plan, st, NULL, &snap->entries[i]);
	if (!err && snap->kind == VOL_PLAIN && st)
		plan->stale_dirs = dest_state_stale_dirs(st);
	if (err)
		sync_plan_free(plan);
	return err;
}
