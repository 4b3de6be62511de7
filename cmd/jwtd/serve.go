package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/connlimit"
	"github.com/jwtd/jwtd/internal/httpapi"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/mongo"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/secretfile"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/tlsconfig"
	"github.com/jwtd/jwtd/internal/token"
)

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd serve", "jwtd serve [flags]", e, everySetting)
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return err
	}
	if err := checkUnreloaded(cfg); err != nil {
		return err // every such error at once, before anything is opened
	}
	level, _ := cfg.Level()
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	stopped := false
	defer func() {
		// Deferred first, so it runs last: after the deferred calls below
		// have flushed the refusals, closed the audit trail (which logs
		// each entry it still held as it writes it) and closed the store.
		if stopped {
			logger.Info("stopped")
		}
	}()
	for _, u := range config.UnreadEnv(e.environ) {
		attrs := []any{"variable", u.Name}
		if u.Near != "" {
			attrs = append(attrs, "did_you_mean", u.Near)
		}
		logger.Warn(u.String(), attrs...)
	}
	if e.getenv("GOGC") == "" {
		// jwtd's live heap is small (a few MB) and nearly all it allocates
		// is garbage at the end of a request, so Go's default of collecting
		// whenever the heap doubles means a collection every few thousand
		// requests. Letting it grow to five times the live heap costs a few
		// tens of MB and gives back about 8% of the CPU (make bench)...
		debug.SetGCPercent(400)
		if e.getenv("GOMEMLIMIT") == "" {
			// ...up to 64 MiB of heap, past which the collector works
			// harder rather than let the process grow.
			debug.SetMemoryLimit(64 << 20)
		}
	}

	m := metrics.New()
	store, err := openStore(ctx, cfg, logger, commitObserver(logger, m))
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("closing the record store", "err", err)
		}
	}()
	trail := newTrail(cfg, store, logger, m)
	defer trail.Close() // before the store closes: deferred calls run last first
	var running live
	signing, err := newServeKeys(ctx, cfg, e, store, &running, logger, m, trail)
	if errors.Is(err, keys.ErrSealed) {
		//nolint:errcheck // the start is refused either way
		trail.Commit(ctx, audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionKeyOpenFail, Result: audit.ResultFailed, Detail: err.Error()})
	}
	if err != nil {
		return err
	}
	apiKeys, err := loadAPIKeys(cfg, e)
	if err != nil {
		return err
	}
	running.apiKeys.Store(apiKeys)
	noteUnusedAdminKey(cfg, logger)
	phones, err := phone.NewNormalizer(cfg.Phone.DefaultRegion, 0)
	if err != nil {
		return err
	}
	ratelimit.LogRedisTo(logger)
	limitStore, err := ratelimit.OpenStore(cfg.Limits.URL, cfg.Limits.MaxKeys)
	if err != nil {
		return err
	}
	defer limitStore.Close()
	limiter, clientIP, err := buildLimiter(cfg, limitStore, logger, m)
	if err != nil {
		return err
	}
	purger := &record.Purger{Store: store, Retention: cfg.Store.Retention, Now: time.Now}
	purgeCtx, stopPurge := context.WithCancel(context.Background())
	defer stopPurge()
	go signing.run(purgeCtx)
	go repeat(purgeCtx, cfg.Store.PurgeInterval, func(ctx context.Context) {
		n, err := purger.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("purging expired records", "err", err)
		case n > 0:
			logger.Info("purged expired records", "count", n)
		}
		n, err = audit.Purge(ctx, store, trail, time.Now().Add(-cfg.Audit.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("purging old audit entries", "err", err)
		case n > 0:
			logger.Info("purged audit entries older than audit.retention", "count", n, "retention", cfg.Audit.Retention.String())
		}
	})
	refusals := audit.NewRefusals()
	go repeat(purgeCtx, time.Minute, func(ctx context.Context) {
		refusals.Flush(ctx, trail, time.Now()) //nolint:errcheck // logged by the trail
		trail.LogHead()
	})
	defer refusals.Flush(context.Background(), trail, time.Now()) //nolint:errcheck // logged by the trail

	// Decided before serving: http.Server fills in TLSConfig itself once
	// it serves, so it is not read afterwards.
	useTLS := cfg.TLS.CertFile != ""
	var tlsCfg *tls.Config
	if useTLS {
		if tlsCfg, err = tlsconfig.Server(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile, cfg.KeyFiles(), logger); err != nil {
			return err
		}
	}
	// SIGHUP is caught from here on; before, it would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ln, err := net.Listen("tcp", cfg.Listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w\nAnother process listens on %s: stop it, or give jwtd another address with --listen, JWTD_LISTEN or listen: in the file", err, cfg.Listen)
	}
	if err != nil {
		return err
	}
	limitRoutes := cfg.Limits.RouteRules()
	maxConns := maxConnections(cfg.HTTP.MaxConnections)
	perClient := perClientConnections(cfg.HTTP.MaxConnectionsPerClient, maxConns)
	shedLog := logevery.New(10 * time.Second)
	conns, err := connlimit.New(ln, connlimit.Options{Total: maxConns, PerClient: perClient, Exempt: clientIP.IsTrusted,
		Shed: func(client netip.Addr, reason string) {
			m.ConnectionShed(reason)
			if ok, held := shedLog.Allow(); ok {
				logger.Warn("connection limits: closing idle connections or refusing new ones", "client", client.String(),
					"reason", reason, "max_connections", maxConns, "max_connections_per_client", perClient, "since_last_line", held)
			}
		}})
	if err != nil {
		ln.Close()
		return err
	}
	ln = conns
	srv := &http.Server{
		ConnState: conns.ConnState,
		TLSConfig: tlsCfg,
		Handler: httpapi.NewServer(
			httpapi.Deps{
				Logger: logger, Tokens: running.tokens.Load, Store: store,
				APIKeys: running.apiKeys.Load, Phones: phones,
				Minter: &mint.Minter{
					Tokens: running.tokens.Load, Store: store, Phones: phones, Metrics: m,
					Limiter: limiter, LimitBy: limitRoutes, Audit: trail,
				},
				Limiter: limiter, LimitStore: limitStore, ClientIP: clientIP, Metrics: m, Keys: signing,
				Audit: trail, AuditStore: store, Refusals: refusals,
			},
			httpapi.Options{
				MaxBodyBytes: cfg.HTTP.MaxBodyBytes, VerifyLimits: limitRoutes["verify"],
				RequireClientCert: cfg.TLS.ClientCAFile != "", Seed000RequireCaller: cfg.Seed000.RequireCaller,
				MetricsElsewhere: cfg.Metrics.Listen != "",
			},
		),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		// net/http reads up to 4 KiB past MaxHeaderBytes before it refuses:
		// this makes the limit 16 KiB, as documented.
		MaxHeaderBytes: 16<<10 - 4096,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg, m, logger, serveErr)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	go func() {
		if useTLS {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	logger.Info("listening", "addr", ln.Addr().String(), "tls", useTLS, "max_connections", maxConns, "max_connections_per_client", perClient,
		"client_certs", cfg.TLS.ClientCAFile != "", "version", version, "data_dir", cfg.DataDir)

	for {
		select {
		case err := <-serveErr:
			return err
		case <-hup:
			reload(ctx, fs, e, logger, &running, signing, trail)
		case <-ctx.Done():
			logger.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.String())
			sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			// In-flight requests are done; the deferred Close commits
			// whatever the group committer still holds.
			stopped = true
			return nil
		}
	}
}

// serveMetrics serves /metrics alone on metrics.listen (plain HTTP, as
// Prometheus scrapes exporters), so that the API's port need not show it;
// a failure to serve ends serve through serveErr.
func serveMetrics(cfg *config.Config, m *metrics.Metrics, logger *slog.Logger, serveErr chan<- error) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout, MaxHeaderBytes: 16<<10 - 4096,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			select {
			case serveErr <- fmt.Errorf("metrics.listen: %w", err):
			default:
			}
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// live is what a reload replaces while serving: the token service (keys
// and profiles) and the API keys.
type live struct {
	tokens  atomic.Pointer[token.Service]
	apiKeys atomic.Pointer[apikey.Set]
}

// reload re-reads the configuration, keys and API keys (SIGHUP). The
// listener and its connections are untouched; on any error everything
// running stays.
func reload(ctx context.Context, fs *pflag.FlagSet, e env, logger *slog.Logger, running *live, signing *serveKeys, trail *audit.Trail) {
	before := running.apiKeys.Load().Names()
	err := func() error {
		cfg, err := config.Load(fs, e.getenv)
		if err != nil {
			return err
		}
		if err := checkUnreloaded(cfg); err != nil {
			return err
		}
		apiKeys, err := loadAPIKeys(cfg, e)
		if err != nil {
			return err
		}
		next, err := signing.reload(ctx, cfg, e)
		if err != nil {
			return err
		}
		running.apiKeys.Store(apiKeys)
		noteUnusedAdminKey(cfg, logger)
		logger.Info("reloaded keys, profiles and API keys", "keys", len(next.Keys().All()), "api_keys", apiKeys.Len())
		return nil
	}()
	entry := audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionConfigReload, Target: "signal:SIGHUP"}
	if err != nil {
		logger.Error("reload refused; keeping the running keys, profiles and API keys", "err", err)
		entry.Result, entry.Detail = audit.ResultRefused, err.Error()
	}
	trail.Record(ctx, entry) //nolint:errcheck // logged by the trail
	if err == nil {
		trail.Record(ctx, apiKeysChange(before, running.apiKeys.Load().Names())) //nolint:errcheck // logged by the trail
	}
}

// apiKeysChange is the audit entry of a reload of the API keys: the names
// added and removed (never a key or its hash).
func apiKeysChange(before, after []string) audit.Entry {
	var added, removed []string
	for _, n := range after {
		if !slices.Contains(before, n) {
			added = append(added, n)
		}
	}
	for _, n := range before {
		if !slices.Contains(after, n) {
			removed = append(removed, n)
		}
	}
	return audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionAPIKeys, Target: "api_keys",
		Detail: fmt.Sprintf("added=%s removed=%s", strings.Join(added, ","), strings.Join(removed, ","))}
}

// newTrail starts this instance's audit trail on the record store.
func newTrail(cfg *config.Config, s audit.Store, logger *slog.Logger, m *metrics.Metrics) *audit.Trail {
	return audit.NewTrail(s, audit.Options{
		Chain: cfg.AuditInstance(), Required: cfg.Audit.Required, Logger: logger, Timeout: cfg.Store.Timeout,
		Written: func(es []audit.Entry) {
			for _, e := range es {
				m.AuditWritten(e.Action, e.Result, e.Seq)
			}
		},
		Failed: func(error) { m.AuditFailed() },
	})
}

// noteUnusedAdminKey says when configured api_keys set aside the admin
// key generated on an earlier first start.
func noteUnusedAdminKey(cfg *config.Config, logger *slog.Logger) {
	if admin := apikey.AdminFile(cfg.DataDir); len(cfg.APIKeys) > 0 {
		if _, err := os.Stat(admin); err == nil {
			logger.Info("api_keys are configured, so the admin key generated on first start is not accepted", "file", admin)
		}
	}
}

// checkUnreloaded builds, and drops, what serve built at start and a reload
// does not replace (rate limits, trusted proxies, the phone region), and the
// API keys, so that a reload refuses a file the next start would refuse.
func checkUnreloaded(cfg *config.Config) error {
	var errs []error
	if len(cfg.APIKeys) > 0 {
		if _, err := apikey.NewSet(cfg.APIKeys); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := limitRules(cfg); err != nil {
		errs = append(errs, err)
	}
	if _, err := clientIPResolver(cfg); err != nil {
		errs = append(errs, err)
	}
	if _, err := phone.NewNormalizer(cfg.Phone.DefaultRegion, 1); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// commitObserver counts every commit in the metrics and logs failed ones,
// at most one line in 10 s with the count left out: a full disk or a store
// away fails every commit, and the log must say why without flooding.
func commitObserver(logger *slog.Logger, m *metrics.Metrics) record.Observer {
	every := logevery.New(10 * time.Second)
	return func(records int, took time.Duration, err error) {
		m.Committed(records, took, err)
		if err == nil {
			return
		}
		if ok, held := every.Allow(); ok {
			logger.Error("record store: commit failed; requests get 503 until commits succeed", "err", err,
				"records", records, "failures_since_last_line", held)
		}
	}
}

// storeUnreachable says which store could not be opened (its URL without
// a password) and what to check.
func storeUnreachable(storeURL string, err error) error {
	shown, host := "", ""
	if u, perr := neturl.Parse(storeURL); perr == nil {
		shown, host = u.Redacted(), u.Host
	}
	return fmt.Errorf("the record store at store.url %s could not be opened: %w\n"+
		"Is MongoDB up, and does %s resolve and answer from here? Give its address with --store-url or JWTD_STORE_URL", shown, err, host)
}

// storage is what jwtd keeps in its store: records, the managed keys'
// keyrings and history, and the audit trail.
type storage interface {
	record.Store
	keys.KeyStore
	audit.Store
}

// openStore opens the record store the URL's scheme names.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, observe record.Observer) (storage, error) {
	url := cfg.StoreURL()
	group := record.GroupOptions{MaxBatch: cfg.Store.MaxBatch, Linger: cfg.Store.Linger,
		MaxWaiting: cfg.Store.MaxWaiting, Timeout: cfg.Store.Timeout, Observe: observe}
	if strings.HasPrefix(url, "mongodb") {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := mongo.Open(octx, url, mongo.Options{GroupOptions: group, Retention: cfg.Store.Retention})
		if err != nil {
			return nil, storeUnreachable(url, err)
		}
		logger.Info("record store: mongodb", "ttl_index", s.TTLIndex(), "retention", cfg.Store.Retention.String())
		return s, nil
	}
	path, err := sqlite.PathFromURL(url)
	if err != nil {
		return nil, err
	}
	if err := secretfile.MakeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	s, err := sqlite.Open(path, sqlite.Options{GroupOptions: group})
	if err != nil {
		return nil, err
	}
	logger.Info("record store: sqlite", "path", path, "retention", cfg.Store.Retention.String())
	return s, nil
}

// loadAPIKeys returns the configured API keys or, with none configured, the
// admin key kept in the data directory, made (and printed once to stderr)
// on first start.
func loadAPIKeys(cfg *config.Config, e env) (*apikey.Set, error) {
	if len(cfg.APIKeys) > 0 {
		return apikey.NewSet(cfg.APIKeys)
	}
	spec, plain, err := apikey.LoadOrCreateAdmin(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if plain != "" {
		fmt.Fprintf(e.stderr, "jwtd: created an admin API key (scopes %s); it is shown only this once:\n\n    %s\n\n"+
			"Keep it secret. Its SHA-256 is kept in %s.\n", strings.Join(spec.Scopes, ", "), plain, apikey.AdminFile(cfg.DataDir))
	}
	return apikey.NewSet([]apikey.Spec{spec})
}

// perClientConnections is the configured bound on one client address's
// connections or, for 0, a sixteenth of the total, at least 4 (and at
// most the total).
func perClientConnections(configured, total int) int {
	if configured > 0 {
		return configured
	}
	return min(max(total/16, 4), total)
}

// maxConnections is the configured bound on client connections or, for 0,
// the open-file limit less what the store, key files and backends need: a
// server out of file descriptors fails in ways clients cannot tell apart.
func maxConnections(configured int) int {
	if configured > 0 {
		return configured
	}
	const reserve, least, unlimited = 128, 64, 1 << 16
	files, ok := openFileLimit()
	if !ok || files > 1<<20 {
		return unlimited
	}
	return max(files-reserve, least)
}

// repeat runs fn now and then every interval, until ctx ends.
func repeat(ctx context.Context, every time.Duration, fn func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// buildLimiter makes the per_ip and per_phone rules and the client-IP
// resolver from the configuration.
func buildLimiter(cfg *config.Config, store *ratelimit.Store, logger *slog.Logger, m *metrics.Metrics) (*ratelimit.Limiter, *ratelimit.ClientIP, error) {
	rules, err := limitRules(cfg)
	if err != nil {
		return nil, nil, err
	}
	limiter, err := ratelimit.New(store, rules, cfg.Limits.OnBackendError, logger,
		ratelimit.Hooks{Rejected: m.RateLimited, BackendError: m.LimiterError})
	if err != nil {
		return nil, nil, err
	}
	backend, _, _ := strings.Cut(cfg.Limits.URL, "://") // never the URL: it may hold a password
	logger.Info("rate limits", "backend", backend, "per_ip", cfg.Limits.PerIP, "per_phone", cfg.Limits.PerPhone,
		"per_ip_verify", cfg.Limits.PerIPVerify, "on_backend_error", cfg.Limits.OnBackendError, "trusted_proxies", len(cfg.Limits.TrustedProxies))
	clientIP, err := clientIPResolver(cfg)
	return limiter, clientIP, err
}

// limitRules are the per_ip and per_phone rules of the configuration.
func limitRules(cfg *config.Config) ([]ratelimit.Rule, error) {
	var rules []ratelimit.Rule
	var errs []error
	for _, r := range []struct{ name, text string }{
		{"per_ip", cfg.Limits.PerIP}, {"per_phone", cfg.Limits.PerPhone}, {"per_ip_verify", cfg.Limits.PerIPVerify},
	} {
		lims, err := ratelimit.ParseLimits(r.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("ratelimit.%s: %w", r.name, err))
		}
		rules = append(rules, ratelimit.Rule{Name: r.name, Limits: lims})
	}
	return rules, errors.Join(errs...)
}

// clientIPResolver resolves client addresses through the trusted proxies.
func clientIPResolver(cfg *config.Config) (*ratelimit.ClientIP, error) {
	c, err := ratelimit.NewClientIP(cfg.Limits.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("ratelimit.%w", err)
	}
	return c, nil
}
