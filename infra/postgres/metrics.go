package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the pool's state and the age of the oldest open
// transaction on the server. The latter matters because readers of the
// global log wait for every older transaction to finish: a transaction
// left open anywhere on the server stalls boards and projections.
type Collector struct {
	pool *pgxpool.Pool

	total, idle, acquired, maxConns *prometheus.Desc
	acquireWait, oldestXact         *prometheus.Desc
}

// NewCollector returns a collector over pool.
func NewCollector(pool *pgxpool.Pool) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("presente_db_"+name, help, nil, nil)
	}
	return &Collector{
		pool:        pool,
		total:       d("pool_connections", "Connections open in the pool."),
		idle:        d("pool_idle_connections", "Idle connections in the pool."),
		acquired:    d("pool_acquired_connections", "Connections in use."),
		maxConns:    d("pool_max_connections", "The pool's connection limit."),
		acquireWait: d("pool_acquire_wait_seconds_total", "Time spent waiting for a free connection."),
		oldestXact:  d("oldest_transaction_seconds", "Age of the oldest transaction holding a transaction id or snapshot on the server; -1 when it could not be read."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.maxConns, c.acquireWait, c.oldestXact} {
		ch <- d
	}
}

const oldestTransactionSQL = `SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0)::float8
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL`

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	age := -1.0
	if err := c.pool.QueryRow(ctx, oldestTransactionSQL).Scan(&age); err != nil {
		age = -1
	}
	ch <- prometheus.MustNewConstMetric(c.oldestXact, prometheus.GaugeValue, age)
}
