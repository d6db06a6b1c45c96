package postgres

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// writeTracer counts the statements that change the database (INSERT,
// UPDATE, DELETE, whether run with Exec or with RETURNING), as pgx sends
// them: a query tracer on every connection of the pool.
type writeTracer struct {
	counting atomic.Bool
	writes   atomic.Uint64
}

// startCounting starts the count once the migrations are done.
func (t *writeTracer) startCounting() { t.counting.Store(true) }

// TraceQueryStart implements pgx.QueryTracer.
func (t *writeTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if t.counting.Load() && isWrite(data.SQL) {
		t.writes.Add(1)
	}
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *writeTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// isWrite reports whether a statement starts with INSERT, UPDATE or DELETE.
func isWrite(sql string) bool {
	s := strings.TrimSpace(sql)
	n := 0
	for n < len(s) && ('a' <= s[n] && s[n] <= 'z' || 'A' <= s[n] && s[n] <= 'Z') {
		n++
	}
	switch strings.ToUpper(s[:n]) {
	case "INSERT", "UPDATE", "DELETE":
		return true
	}
	return false
}

// Writes returns how many statements that change the database this store
// has run since it was opened, migrations aside: the console exposes it as
// ava_db_writes_total.
func (db *DB) Writes() uint64 { return db.writes.writes.Load() }

// ConnectionsOpened returns how many connections the pool has opened
// (ava_db_connections_opened_total).
func (db *DB) ConnectionsOpened() uint64 {
	return uint64(db.pool.Stat().NewConnsCount()) //nolint:gosec // a count, never negative
}
