package console

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerStoreMetrics exposes what the store counts of itself (both
// stores do): ava_db_writes_total (statements that changed the database),
// ava_db_connections_opened_total, and each database/sql pool's go_sql_*
// statistics (open, idle and in-use connections, waits, connections
// closed) when it has such pools (SQLite's writer and readers).
func registerStoreMetrics(reg prometheus.Registerer, store any) {
	if w, ok := store.(interface{ Writes() uint64 }); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ava_db_writes_total",
			Help: "Statements that changed the database (INSERT, UPDATE, DELETE), migrations aside.",
		}, func() float64 { return float64(w.Writes()) }))
	}
	if c, ok := store.(interface{ ConnectionsOpened() uint64 }); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ava_db_connections_opened_total",
			Help: "Connections to the database opened since start (pools keep theirs: a few at start, then none).",
		}, func() float64 { return float64(c.ConnectionsOpened()) }))
	}
	if p, ok := store.(interface{ Pools() map[string]*sql.DB }); ok {
		for name, pool := range p.Pools() {
			reg.MustRegister(collectors.NewDBStatsCollector(pool, name))
		}
	}
}
