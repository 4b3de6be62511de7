// Package metrics holds jwtd's Prometheus metrics. Every method is safe on
// a nil *Metrics, which records nothing, so components can be built without
// metrics in tests. Labels are only ever profile names, route patterns,
// reasons and limit names: never a token, a key, a phone number or an IP.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is jwtd's set of collectors on a registry of its own.
type Metrics struct {
	registry       *prometheus.Registry
	tokensIssued   *prometheus.CounterVec
	verifications  *prometheus.CounterVec
	commitSeconds  prometheus.Histogram
	batchSize      prometheus.Histogram
	commitFailures prometheus.Counter
	rateLimited    *prometheus.CounterVec
	limiterErrors  prometheus.Counter
	httpSeconds    *prometheus.HistogramVec
	outcomes       *prometheus.CounterVec
	keys           *prometheus.GaugeVec
	keyChanges     *prometheus.CounterVec
	keySyncErrors  prometheus.Counter
	auditEntries   *prometheus.CounterVec
	auditHead      prometheus.Gauge
	auditFailures  prometheus.Counter
	connsShed      *prometheus.CounterVec
	activity       activity
}

// New makes the collectors and registers them with the Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_tokens_issued_total", Help: "Tokens handed out, by profile.",
		}, []string{"profile"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_verifications_total", Help: "Token verifications, by result (active or the reason).",
		}, []string{"result"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "jwtd_store_commit_seconds", Help: "Time to commit one group of records durably.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "jwtd_store_commit_batch_size", Help: "Records per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jwtd_store_commit_failures_total", Help: "Group commits that failed as a whole.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_ratelimit_rejections_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		limiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jwtd_ratelimit_backend_errors_total", Help: "Rate-limit checks that could not reach the backend.",
		}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jwtd_http_request_duration_seconds", Help: "HTTP request latency, by route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route", "code"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_outcomes_total", Help: "Transaction outcomes recorded, by status.",
		}, []string{"status"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jwtd_managed_keys", Help: "Managed keys this instance holds, by profile and state (next, current, retired).",
		}, []string{"profile", "state"}),
		keyChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_managed_key_changes_total", Help: "Managed-key state changes this instance saw, by profile and change (published, activated, retired, deleted).",
		}, []string{"profile", "change"}),
		keySyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jwtd_managed_key_sync_failures_total", Help: "Syncs of the managed keys with the store that failed (store unavailable, or a key that does not open).",
		}),
		auditEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_audit_entries_total", Help: "Audit entries this instance wrote, by action and result.",
		}, []string{"action", "result"}),
		auditHead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jwtd_audit_head_seq", Help: "Sequence number of the last entry of this instance's audit chain (its hash is in the log).",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jwtd_audit_write_failures_total", Help: "Writes of audit entries that failed (retried until they succeed).",
		}),
		connsShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtd_connections_shed_total", Help: "Connections closed or refused to keep to the connection limits, by reason (client_idle_closed, client_refused, idle_closed).",
		}, []string{"reason"}),
	}
	m.registry.MustRegister(m.connsShed, m.auditEntries, m.auditHead, m.auditFailures, m.tokensIssued, m.verifications, m.commitSeconds, m.batchSize, m.commitFailures,
		m.rateLimited, m.limiterErrors, m.httpSeconds, m.outcomes, m.keys, m.keyChanges, m.keySyncErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Issued counts a token handed out.
func (m *Metrics) Issued(profile string) {
	if m != nil {
		m.tokensIssued.WithLabelValues(profile).Inc()
		m.activity.issued(profile, time.Now())
	}
}

// Verified counts a verification by its result.
func (m *Metrics) Verified(result string) {
	if m != nil {
		m.verifications.WithLabelValues(result).Inc()
	}
}

// Committed observes one group commit.
func (m *Metrics) Committed(records int, took time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.commitFailures.Inc()
		return
	}
	m.commitSeconds.Observe(took.Seconds())
	m.batchSize.Observe(float64(records))
}

// Outcome counts a transaction outcome recorded with its status.
func (m *Metrics) Outcome(status string) {
	if m != nil {
		m.outcomes.WithLabelValues(status).Inc()
	}
}

// RateLimited counts a request refused by the named limit.
func (m *Metrics) RateLimited(limit string) {
	if m != nil {
		m.rateLimited.WithLabelValues(limit).Inc()
		m.activity.rateLimited(time.Now())
	}
}

// ConnectionShed counts a connection closed or refused to keep to the
// connection limits.
func (m *Metrics) ConnectionShed(reason string) {
	if m != nil {
		m.connsShed.WithLabelValues(reason).Inc()
	}
}

// LimiterError counts a rate-limit check the backend did not answer.
func (m *Metrics) LimiterError() {
	if m != nil {
		m.limiterErrors.Inc()
	}
}

// Request observes an HTTP request.
func (m *Metrics) Request(route string, code int, took time.Duration) {
	if m != nil {
		if route == "" || route == "/" { // "/" is the catch-all of what no route matches
			route = "unmatched"
		}
		m.httpSeconds.WithLabelValues(route, strconv.Itoa(code)).Observe(took.Seconds())
	}
}

// Keys sets how many managed keys of a profile are in each state.
func (m *Metrics) Keys(profile string, byState map[string]int) {
	if m != nil {
		for _, state := range []string{"next", "current", "retired"} {
			m.keys.WithLabelValues(profile, state).Set(float64(byState[state]))
		}
	}
}

// KeyChanged counts a managed key's change of state.
func (m *Metrics) KeyChanged(profile, change string) {
	if m != nil {
		m.keyChanges.WithLabelValues(profile, change).Inc()
	}
}

// KeySyncFailed counts a failed sync of the managed keys.
func (m *Metrics) KeySyncFailed() {
	if m != nil {
		m.keySyncErrors.Inc()
	}
}

// AuditWritten counts an audit entry written and moves the chain's head.
func (m *Metrics) AuditWritten(action, result string, headSeq int64) {
	if m == nil {
		return
	}
	m.auditEntries.WithLabelValues(action, result).Inc()
	m.auditHead.Set(float64(headSeq))
}

// AuditFailed counts a failed write of audit entries.
func (m *Metrics) AuditFailed() {
	if m == nil {
		return
	}
	m.auditFailures.Inc()
}
