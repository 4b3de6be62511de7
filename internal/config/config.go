// Package config reads jwtd's configuration: built-in defaults, then one
// YAML file, then JWTD_* environment variables, then command-line flags, each
// layer over the one before (koanf does the layering). Unknown keys in the
// file are errors, so a typo does not silently fall back to a default.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/secretfile"
	"github.com/jwtd/jwtd/internal/suggest"
	"github.com/jwtd/jwtd/internal/token"
)

// Config is the whole configuration. Its field names are the YAML keys, part of jwtd's interface.
type Config struct {
	Listen   string                       `koanf:"listen"`
	DataDir  string                       `koanf:"data_dir"`
	LogLevel string                       `koanf:"log_level"`
	Leeway   time.Duration                `koanf:"leeway"`
	HTTP     HTTP                         `koanf:"http"`
	TLS      TLS                          `koanf:"tls"`
	Store    Store                        `koanf:"store"`
	KeyStore KeyStore                     `koanf:"key_store"`
	Audit    Audit                        `koanf:"audit"`
	Phone    Phone                        `koanf:"phone"`
	Limits   RateLimit                    `koanf:"ratelimit"`
	Keys     []keys.Spec                  `koanf:"keys"`
	Profiles map[string]token.ProfileSpec `koanf:"profiles"`
	APIKeys  []apikey.Spec                `koanf:"api_keys"`
	Seed000  Seed000                      `koanf:"seed000"`
	Metrics  Metrics                      `koanf:"metrics"`
	// AllowReadableKeyFiles accepts key files (and the TLS key file) that
	// group or others can read; never files they can write.
	AllowReadableKeyFiles bool `koanf:"allow_readable_key_files"`

	// File is the configuration file read, if any; relative key file names
	// are resolved against its directory.
	File string `koanf:"-"`
}

// TLS turns on HTTPS. With ClientCAFile, the admin and introspection routes
// require a client certificate it signed.
type TLS struct {
	CertFile     string `koanf:"cert_file"`
	KeyFile      string `koanf:"key_file"`
	ClientCAFile string `koanf:"client_ca_file"`
}

// HTTP holds the server's limits.
type HTTP struct {
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	ReadTimeout       time.Duration `koanf:"read_timeout"`
	WriteTimeout      time.Duration `koanf:"write_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	MaxBodyBytes      int64         `koanf:"max_body_bytes"`
	ShutdownTimeout   time.Duration `koanf:"shutdown_timeout"`
	// MaxConnections bounds the open client connections; 0 derives it
	// from the process's open-file limit.
	MaxConnections int `koanf:"max_connections"`
	// MaxConnectionsPerClient bounds those of one client address (IPv6
	// by /64; trusted proxies are exempt); 0 is a sixteenth of
	// MaxConnections, at least 4.
	MaxConnectionsPerClient int `koanf:"max_connections_per_client"`
}

// Store is where records go.
type Store struct {
	// URL is sqlite://<path> (default: jwtd.db in data_dir) or
	// mongodb://host[:port][,host...]/<database>[?options].
	URL           string        `koanf:"url"`
	Retention     time.Duration `koanf:"retention"`      // records are purged this long after expiry
	PurgeInterval time.Duration `koanf:"purge_interval"` // how often the purge runs
	MaxBatch      int           `koanf:"max_batch"`      // group commit: records per transaction
	Linger        time.Duration `koanf:"linger"`         // group commit: wait for more records
	Timeout       time.Duration `koanf:"timeout"`        // bound on a request's wait for its commit, and on every store call
	MaxWaiting    int           `koanf:"max_waiting"`    // requests waiting for commits; past it, 503 at once
}

// Audit configures the audit trail, kept in the record store.
type Audit struct {
	// Instance names this instance's chain and is written into its
	// entries; empty means the host name.
	Instance string `koanf:"instance"`
	// Retention is how long entries are kept (they are purged with the
	// records, every store.purge_interval).
	Retention time.Duration `koanf:"retention"`
	// Required makes an action whose entry cannot be written fail (503).
	Required bool `koanf:"required"`
}

// AuditInstance is the configured instance name, or the host name.
func (c *Config) AuditInstance() string {
	if c.Audit.Instance != "" {
		return c.Audit.Instance
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "jwtd"
}

// KeyStore configures the managed keys, kept sealed in the record store.
type KeyStore struct {
	// MasterKeyFile holds the master keys (base64, the sealing one
	// first); JWTD_MASTER_KEY overrides it. Default with the embedded
	// store: master.key in data_dir, made on first start.
	MasterKeyFile string `koanf:"master_key_file"`
	// SyncInterval is how often every instance reads the keyrings: the
	// longest an instance takes to see a change another made.
	SyncInterval time.Duration `koanf:"sync_interval"`
	// JWKSMaxAge is how long verifiers may cache the JWKS
	// (Cache-Control: max-age); a managed key is published longer than
	// that before it signs.
	JWKSMaxAge time.Duration `koanf:"jwks_max_age"`
}

// RateLimit configures the limiter.
type RateLimit struct {
	URL            string   `koanf:"url"`    // memory:// (default), redis://, redis-sentinel:// or redis-cluster:// (see ratelimit.ValidateURL)
	PerIP          string   `koanf:"per_ip"` // Flask-Limiter syntax: "60 per minute", "10/second;100/hour"
	PerPhone       string   `koanf:"per_phone"`
	PerIPVerify    string   `koanf:"per_ip_verify"`    // the ip limit of /verifyToken, which is called far more often than the minting routes
	TrustedProxies []string `koanf:"trusted_proxies"`  // CIDRs whose X-Forwarded-For is believed
	OnBackendError string   `koanf:"on_backend_error"` // open or closed
	MaxKeys        int      `koanf:"max_keys"`         // memory backend: buckets held; when full, the nearest to refilling goes
	// Routes says which limits apply where: route group → ["ip", "phone"].
	// Groups: token (GET /v1/token/...), issue (POST /v1/tokens),
	// generate (POST /generateToken), verify (/verifyToken).
	Routes map[string][]string `koanf:"routes"`
}

// rateLimitGroups are the route groups and the keys each can be limited by.
var rateLimitGroups = map[string][]string{
	"token": {"ip", "phone"}, "issue": {"ip", "phone"}, "generate": {"ip"}, "verify": {"ip"},
}

// RouteRules maps each route group to the names of the rules that limit
// it: "phone" is per_phone, and "ip" is per_ip, except on verify where it
// is per_ip_verify.
func (r RateLimit) RouteRules() map[string][]string {
	out := make(map[string][]string, len(r.Routes))
	for group, kinds := range r.Routes {
		rules := make([]string, 0, len(kinds))
		for _, k := range kinds {
			switch {
			case k == "phone":
				rules = append(rules, "per_phone")
			case group == "verify":
				rules = append(rules, "per_ip_verify")
			default:
				rules = append(rules, "per_ip")
			}
		}
		out[group] = rules
	}
	return out
}

// Metrics says where /metrics is served.
type Metrics struct {
	// Listen is a host:port of its own for /metrics (plain HTTP), as
	// Prometheus exporters run; "" serves it on the API's listener.
	Listen string `koanf:"listen"`
}

// Seed000 configures seed 000's GET /v1/token/{phone}/{xid}.
type Seed000 struct {
	// RequireCaller refuses callers without an API key of scope issue or
	// a verified client certificate (off: the seed's anonymous route).
	RequireCaller bool `koanf:"require_caller"`
}

// Phone holds phone-number parsing settings.
type Phone struct {
	// DefaultRegion reads numbers without a leading + (ISO 3166 alpha-2).
	DefaultRegion string `koanf:"default_region"`
}

// StoreURL is the configured store URL or the default file in data_dir.
func (c *Config) StoreURL() string {
	if c.Store.URL != "" {
		return c.Store.URL
	}
	return "sqlite://" + filepath.Join(c.DataDir, "jwtd.db")
}

// setting is one of the common settings that also have a flag and an
// environment variable.
type setting struct {
	key, flag, env, usage string
}

var settings = []setting{
	{"listen", "listen", "JWTD_LISTEN", "address to listen on (host:port)"},
	{"data_dir", "data-dir", "JWTD_DATA_DIR", "directory for the embedded record store, its master key and the admin API key made on first start"},
	{"log_level", "log-level", "JWTD_LOG_LEVEL", "debug, info, warn or error"},
	{"leeway", "leeway", "JWTD_LEEWAY", "clock-skew allowance when verifying (at most 60s)"},
	{"store.url", "store-url", "JWTD_STORE_URL", "record store: sqlite://<path> (default: jwtd.db in the data directory) or mongodb://host/db"},
	{"phone.default_region", "default-region", "JWTD_DEFAULT_REGION", "region for phone numbers without + (such as US)"},
	{"ratelimit.url", "ratelimit-url", "JWTD_RATELIMIT_URL", "rate-limit backend: memory://, redis://host:port/db, redis-sentinel://h1:26379,h2:26379/master or redis-cluster://h1:7000,h2:7001"},
}

// defaults are the values with no configuration at all.
func defaults() map[string]any {
	d := map[string]any{
		"listen":                          "127.0.0.1:8080",
		"data_dir":                        "./jwtd-data",
		"log_level":                       "info",
		"leeway":                          "30s",
		"http.read_header_timeout":        "5s",
		"http.read_timeout":               "10s",
		"http.write_timeout":              "15s",
		"http.idle_timeout":               "60s",
		"http.max_body_bytes":             1 << 20,
		"http.shutdown_timeout":           "20s",
		"http.max_connections":            0,
		"http.max_connections_per_client": 0,
		"store.url":                       "",
		"store.retention":                 "720h",
		"store.purge_interval":            "1h",
		"store.max_batch":                 256,
		"store.linger":                    "0s",
		"store.timeout":                   "5s",
		"store.max_waiting":               1024,
		"audit.instance":                  "",
		"audit.retention":                 "9600h",
		"audit.required":                  false,
		"key_store.master_key_file":       "",
		"key_store.sync_interval":         "10s",
		"key_store.jwks_max_age":          "5m",
		"phone.default_region":            "",
		"ratelimit.url":                   "memory://",
		"ratelimit.per_ip":                "60 per minute",
		"ratelimit.per_phone":             "10 per hour",
		"ratelimit.per_ip_verify":         "50 per second",
		"ratelimit.trusted_proxies":       []string{},
		"ratelimit.on_backend_error":      "open",
		"ratelimit.max_keys":              100000,
		"ratelimit.routes.token":          []string{"ip", "phone"},
		"ratelimit.routes.issue":          []string{"ip", "phone"},
		"ratelimit.routes.generate":       []string{"ip"},
		"ratelimit.routes.verify":         []string{"ip"},
		"allow_readable_key_files":        false,
	}
	for name, p := range token.BuiltinProfiles() {
		prefix := "profiles." + name + "."
		d[prefix+"layout"] = string(p.Layout)
		d[prefix+"issuer"] = p.Issuer
		d[prefix+"ttl"] = p.TTL.String()
		d[prefix+"backdate"] = p.Backdate.String()
		d[prefix+"data_claim"] = p.DataClaim
	}
	return d
}

// AddFlags registers --config and the flags of the named settings on fs
// (all of them when none are named). Every setting's environment variable
// is read whatever the flags.
func AddFlags(fs *pflag.FlagSet, only ...string) {
	fs.String("config", "", "YAML configuration file (env JWTD_CONFIG)")
	d := defaults()
	for _, s := range settings {
		if len(only) == 0 || slices.Contains(only, s.key) {
			fs.String(s.flag, fmt.Sprint(d[s.key]), s.usage+" (env "+s.env+")")
		}
	}
}

// Load layers defaults, the file named by --config or JWTD_CONFIG, the
// environment (through getenv) and the flags that were set, then validates.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults(), "."), nil); err != nil {
		return nil, err
	}
	fileDataDir := "" // a relative data_dir the file gave, as written
	path := getenv("JWTD_CONFIG")
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			if text, rerr := os.ReadFile(path); rerr == nil {
				return nil, yamlError(path, text, err) // read, but not as YAML
			}
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		// A relative data_dir in the file is relative to the file, as its
		// key files are: the server and the CLI find the same directory
		// from wherever they are run.
		if dir, ok := fk.Get("data_dir").(string); ok && dir != "" && !filepath.IsAbs(dir) {
			fileDataDir = dir
			if err := fk.Set("data_dir", filepath.Join(filepath.Dir(path), dir)); err != nil {
				return nil, err
			}
		}
		if err := k.Merge(fk); err != nil {
			return nil, err
		}
	}
	o := origins{file: path, set: map[string]string{}}
	env := map[string]any{}
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			env[s.key] = v
			o.set[s.key] = s.env
		}
	}
	if err := k.Load(confmap.Provider(env, "."), nil); err != nil {
		return nil, err
	}
	flagKeys := map[string]string{}
	for _, s := range settings {
		flagKeys[s.flag] = s.key
	}
	err := k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		key, ok := flagKeys[f.Name]
		if !ok || !f.Changed {
			return "", nil
		}
		o.set[key] = "--" + f.Name
		return key, f.Value.String()
	}), nil)
	if err != nil {
		return nil, err
	}
	// Every mistake at once: keys the configuration type does not have
	// (only the file can have those), then values that do not decode.
	errs := unknownKeys(k.Raw(), reflect.TypeFor[Config](), "", o)
	var c Config
	err = k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:       typedValues,
		Result:           &c,
		WeaklyTypedInput: true,
		TagName:          "koanf",
		MatchName:        matchSetting,
	}})
	if err != nil {
		errs = append(errs, decodeErrors(err, o))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.File = path
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if fileDataDir != "" && c.DataDir == filepath.Join(filepath.Dir(path), fileDataDir) {
		if err := dataDirMoved(c.DataDir, fileDataDir); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// dataDirMoved refuses a relative data_dir that, now read relative to the
// configuration file, names a directory that does not exist while the
// same path from the working directory (how jwtd before 2026-11-26 read
// it) holds jwtd's data: starting would make new keys, and every token
// issued with the old ones would stop verifying.
func dataDirMoved(resolved, written string) error {
	if _, err := os.Stat(resolved); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, name := range []string{"keys", "jwtd.db", "admin-api-key.json"} {
		if _, err := os.Stat(filepath.Join(written, name)); err == nil {
			abs, _ := filepath.Abs(written)
			return fmt.Errorf("data_dir %q is read relative to the configuration file, as %s, which does not exist; "+
				"%s (relative to the working directory, as earlier versions read it) holds jwtd's data: "+
				"write data_dir: %q in the file to keep using it", written, resolved, abs, abs)
		}
	}
	return nil
}

// Validate checks the settings that stand alone. What has a constructor is
// checked by building it, once, where it is used (keys and profiles, API
// keys, rate limits, the client-IP resolver, the phone region), and its
// error names the setting.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q is not host:port; write one such as 127.0.0.1:8080, or :8080 for every interface", c.Listen))
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen %q: %w", c.Metrics.Listen, err))
		} else if c.Metrics.Listen == c.Listen {
			errs = append(errs, fmt.Errorf("metrics.listen %q is the API's listen address; give it a port of its own, or leave it empty to serve /metrics on the API port", c.Metrics.Listen))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.Leeway < 0 || c.Leeway > token.MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway %s is outside 0–%s; write at most %s", c.Leeway, token.MaxLeeway, token.MaxLeeway))
	}
	errs = append(errs, c.profileNames()...)
	if c.Store.Retention < 0 || c.Store.PurgeInterval <= 0 || c.Store.MaxBatch <= 0 || c.Store.Linger < 0 ||
		c.Store.Timeout <= 0 || c.Store.MaxWaiting <= 0 {
		errs = append(errs, errors.New("store: retention and linger must be at least 0, purge_interval, max_batch, timeout and max_waiting positive"))
	}
	if c.Store.MaxWaiting < c.Store.MaxBatch {
		errs = append(errs, fmt.Errorf("store.max_waiting (%d) is below store.max_batch (%d): no batch could fill; make it at least as large", c.Store.MaxWaiting, c.Store.MaxBatch))
	}
	if u := c.StoreURL(); !strings.HasPrefix(u, "sqlite://") && !strings.HasPrefix(u, "mongodb://") && !strings.HasPrefix(u, "mongodb+srv://") {
		errs = append(errs, fmt.Errorf("store.url %q: use sqlite://<path> or mongodb://host[:port]/<database>", c.Store.URL))
	}
	if c.Audit.Retention <= 0 {
		errs = append(errs, fmt.Errorf("audit.retention %s must be positive (such as 9600h, 400 days)", c.Audit.Retention))
	}
	if c.KeyStore.SyncInterval < 100*time.Millisecond || c.KeyStore.JWKSMaxAge < 0 {
		errs = append(errs, errors.New("key_store: sync_interval must be at least 100ms, jwks_max_age at least 0"))
	}
	errs = append(errs, c.Limits.validate()...)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: give both cert_file and key_file, or neither"))
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		errs = append(errs, errors.New("tls.client_ca_file needs cert_file and key_file"))
	}
	if c.HTTP.MaxConnections < 0 {
		errs = append(errs, errors.New("http.max_connections must be 0 (from the open-file limit) or positive"))
	}
	if c.HTTP.MaxConnectionsPerClient < 0 {
		errs = append(errs, errors.New("http.max_connections_per_client must be 0 (a sixteenth of max_connections) or positive"))
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("http.max_body_bytes must be positive"))
	}
	for name, t := range map[string]time.Duration{
		"read_header_timeout": c.HTTP.ReadHeaderTimeout, "read_timeout": c.HTTP.ReadTimeout,
		"write_timeout": c.HTTP.WriteTimeout, "idle_timeout": c.HTTP.IdleTimeout,
	} {
		if t <= 0 {
			errs = append(errs, fmt.Errorf("http.%s must be positive", name))
		}
	}
	return errors.Join(errs...)
}

// profileNames refuses a profile of the configuration's own that has no
// key: most often a built-in profile's name mistyped ("defualt"), which
// would otherwise be a new profile that cannot sign.
func (c *Config) profileNames() []error {
	builtin := slices.Sorted(maps.Keys(token.BuiltinProfiles()))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Profiles)) {
		p := c.Profiles[name]
		if slices.Contains(builtin, name) || p.Key != "" || p.Managed != nil {
			continue
		}
		if near := suggest.Nearest(name, builtin); near != "" {
			errs = append(errs, fmt.Errorf("profiles.%s: no such profile; did you mean %s? "+
				"(the built-in profiles are %s)", name, near, strings.Join(builtin, ", ")))
			continue
		}
		errs = append(errs, fmt.Errorf("profiles.%s: not a built-in profile (%s), so it needs key: (the kid of one of keys) "+
			"or managed: {alg: ES256} (keys jwtd makes and rotates)", name, strings.Join(builtin, ", ")))
	}
	return errs
}

// Level is the configured log level.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("log_level %q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// KeyFiles is the policy key files are read under.
func (c *Config) KeyFiles() secretfile.Policy {
	return secretfile.Policy{AllowReadable: c.AllowReadableKeyFiles}
}

// Dir is the directory relative key files are resolved against.
func (c *Config) Dir() string {
	if c.File == "" {
		return ""
	}
	return filepath.Dir(c.File)
}

func (r *RateLimit) validate() []error {
	var errs []error
	if r.OnBackendError != "open" && r.OnBackendError != "closed" {
		errs = append(errs, fmt.Errorf("ratelimit.on_backend_error %q is not open or closed", r.OnBackendError))
	}
	if r.URL == "" {
		errs = append(errs, errors.New("ratelimit.url must not be empty: use memory:// or a Redis URL"))
	} else if err := ratelimit.ValidateURL(r.URL); err != nil {
		errs = append(errs, err)
	}
	if r.MaxKeys < 1 {
		errs = append(errs, errors.New("ratelimit.max_keys must be positive"))
	}
	for group, kinds := range r.Routes {
		allowed, ok := rateLimitGroups[group]
		if !ok {
			errs = append(errs, fmt.Errorf("ratelimit.routes: %q is not one of token, issue, generate, verify", group))
			continue
		}
		for _, k := range kinds {
			if !slices.Contains(allowed, k) {
				errs = append(errs, fmt.Errorf("ratelimit.routes.%s: %q is not one of %s", group, k, strings.Join(allowed, ", ")))
			}
		}
	}
	return errs
}
