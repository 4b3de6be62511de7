package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/spf13/pflag"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwtd.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./jwtd-data" || c.Leeway != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	av := c.Profiles["appverify"]
	if av.Layout != "appverify" || av.TTL != 90*time.Second || av.Backdate != 10*time.Second {
		t.Errorf("appverify defaults: %+v", av)
	}
	if c.Profiles["castlabs"].Layout != "castlabs" || c.Profiles["default"].TTL != 5*time.Minute {
		t.Errorf("profiles: %+v", c.Profiles)
	}
}

// flag over env over file over defaults.
func TestLayering(t *testing.T) {
	path := writeConfig(t, `
listen: 127.0.0.1:1111
data_dir: /file
log_level: warn
keys:
  - {kid: cl1, alg: HS512, secret: "abc", encoding: raw}
profiles:
  castlabs: {key: cl1}
  mine: {key: cl1, layout: castlabs, ttl: 1m}
`)
	c, err := load(t, []string{"--config", path, "--listen", "127.0.0.1:3333"},
		map[string]string{"JWTD_LISTEN": "127.0.0.1:2222", "JWTD_DATA_DIR": "/env"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3333" || c.DataDir != "/env" || c.LogLevel != "warn" {
		t.Errorf("layering: listen %s data_dir %s log_level %s", c.Listen, c.DataDir, c.LogLevel)
	}
	cl := c.Profiles["castlabs"]
	if cl.Key != "cl1" || cl.Layout != "castlabs" || cl.TTL != 24*time.Hour {
		t.Errorf("a profile's file values merge over its defaults: %+v", cl)
	}
	if c.Profiles["mine"].TTL != time.Minute || len(c.Keys) != 1 || c.Keys[0].Secret != "abc" {
		t.Errorf("file values: %+v %+v", c.Profiles["mine"], c.Keys)
	}
	if c.Dir() != filepath.Dir(path) {
		t.Errorf("Dir %s", c.Dir())
	}
	// JWTD_CONFIG names the file when --config does not.
	c, err = load(t, nil, map[string]string{"JWTD_CONFIG": path})
	if err != nil || c.Listen != "127.0.0.1:1111" {
		t.Errorf("JWTD_CONFIG: %v %v", c, err)
	}
}

// Zero needs no unit, in the file as in the environment.
func TestZeroDurations(t *testing.T) {
	c, err := load(t, nil, map[string]string{"JWTD_CONFIG": writeConfig(t, "leeway: 0\nstore: {linger: 0, retention: 0}\n")})
	if err != nil || c.Leeway != 0 || c.Store.Linger != 0 || c.Store.Retention != 0 {
		t.Errorf("%+v %v", c, err)
	}
}

// Every configuration mistake is told in jwtd's words: the setting, where
// its value came from (FILE stands for the configuration file), the value
// and the fix; the whole message is asserted.
func TestLoadRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		env  map[string]string
		args []string
		want string
	}{
		"unknown key": {file: "listne: 127.0.0.1:1\n",
			want: "listne (in FILE): no such setting; did you mean listen?"},
		"unknown nested": {file: "profiles:\n  default: {tll: 1m}\n",
			want: "profiles.default.tll (in FILE): no such setting; did you mean profiles.default.ttl?"},
		"unknown in a list": {file: "keys:\n  - {kdi: a, alg: HS256, secret: x}\n",
			want: "keys[0].kdi (in FILE): no such setting; did you mean keys[0].kid?"},
		"unknown, nothing near": {file: "http: {zzz: 1}\n",
			want: "http.zzz (in FILE): no such setting; the settings under http are idle_timeout, max_body_bytes, max_connections, max_connections_per_client, " +
				"read_header_timeout, read_timeout, shutdown_timeout, write_timeout"},
		"not a whole number": {file: "http:\n  max_body_bytes: abc\n",
			want: `http.max_body_bytes (in FILE): "abc" is not a whole number; write digits only, such as 1024`},
		"a fraction": {file: "store: {max_batch: 2.5}\n",
			want: "store.max_batch (in FILE): 2.5 is not a whole number; write digits only, such as 3"},
		"too large": {file: "http: {max_connections: \"99999999999999999999\"}\n",
			want: `http.max_connections (in FILE): "99999999999999999999" is too large for this setting`},
		"not true or false": {file: "allow_readable_key_files: yes\n",
			want: `allow_readable_key_files (in FILE): "yes" is not true or false`},
		"a list for text": {file: "listen: [a, b]\n",
			want: "listen (in FILE): a list is not text; write a single value"},
		"text for a mapping": {file: "http: fast\n",
			want: `http (in FILE): "fast" is not a mapping; write its settings as key: value lines under it`},
		"bad duration": {file: "profiles:\n  default: {ttl: soon}\n",
			want: `profiles.default.ttl (in FILE): "soon" is not a duration; write one such as 30s, 500ms, 5m, 1h30m (units: ms, s, m, h)`},
		"duration, no unit": {file: "leeway: 30\n",
			want: "leeway (in FILE): 30 has no unit; write a duration such as 30s, 30ms, 30m or 30h"},
		"nested, no unit": {file: "store: {retention: 720}\n",
			want: "store.retention (in FILE): 720 has no unit; write a duration such as 720s, 720ms, 720m or 720h"},
		"env, no unit": {env: map[string]string{"JWTD_LEEWAY": "30"},
			want: `leeway (set by JWTD_LEEWAY): "30" has no unit; write a duration such as 30s, 30ms, 30m or 30h`},
		"flag, no unit": {args: []string{"--leeway", "30"},
			want: `leeway (set by --leeway): "30" has no unit; write a duration such as 30s, 30ms, 30m or 30h`},
		"flag over env": {args: []string{"--leeway", "1x"}, env: map[string]string{"JWTD_LEEWAY": "30"},
			want: `leeway (set by --leeway): "1x" is not a duration; write one such as 30s, 500ms, 5m, 1h30m (units: ms, s, m, h)`},
		"profile typo": {file: "profiles:\n  defualt: {ttl: 1m}\n",
			want: "profiles.defualt: no such profile; did you mean default? (the built-in profiles are appverify, castlabs, default)"},
		"own profile without a key": {file: "profiles:\n  mobile: {ttl: 1m}\n",
			want: "profiles.mobile: not a built-in profile (appverify, castlabs, default), so it needs key: (the kid of one of keys) " +
				"or managed: {alg: ES256} (keys jwtd makes and rotates)"},
		"every mistake at once": {file: "listne: x\nhttp: {max_body_bytes: abc}\n", env: map[string]string{"JWTD_LEEWAY": "30"},
			want: "listne (in FILE): no such setting; did you mean listen?\n" +
				`leeway (set by JWTD_LEEWAY): "30" has no unit; write a duration such as 30s, 30ms, 30m or 30h` + "\n" +
				`http.max_body_bytes (in FILE): "abc" is not a whole number; write digits only, such as 1024`},
		"bad listen": {file: "listen: nowhere\n",
			want: `listen "nowhere" is not host:port; write one such as 127.0.0.1:8080, or :8080 for every interface`},
		"bad level":        {env: map[string]string{"JWTD_LOG_LEVEL": "loud"}, want: `log_level "loud" is not debug, info, warn or error`},
		"leeway too large": {env: map[string]string{"JWTD_LEEWAY": "5m"}, want: "leeway 5m0s is outside 0–1m0s; write at most 1m0s"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			path := ""
			if tc.file != "" {
				path = writeConfig(t, tc.file)
				env["JWTD_CONFIG"] = path
			}
			_, err := load(t, tc.args, env)
			want := strings.ReplaceAll(tc.want, "FILE", path)
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
		})
	}
}

// A file the YAML parser cannot read is told in jwtd's words: the file,
// the line, the likely mistake and how settings are written (FILE stands
// for the file, HOW for how settings are written); a missing file keeps
// the file system's words, with the file named.
func TestLoadRefusesFiles(t *testing.T) {
	const how = `write each setting as key: value, a colon and a space after the key, and nest a setting ` +
		`by indenting it with spaces under its section (http:, then "  max_body_bytes: 1024" on the next line)`
	for name, tc := range map[string]struct{ text, want string }{
		"no colon": {"listen 127.0.0.1:8080\n",
			`FILE, near line 1 ("listen 127.0.0.1:8080"): a value where settings were expected; is the colon after a key missing?; HOW`},
		"a list": {"- listen: 127.0.0.1:8080\n",
			`FILE, near line 1 ("- listen: 127.0.0.1:8080"): a list where settings were expected; HOW`},
		"a key without its colon": {"profiles:\n  default:\n    ttl: 1m\n  key es1\n",
			`FILE, near line 4 ("  key es1"): a key without its colon; HOW`},
		"a tab": {"http:\n\tmax_body_bytes: 1024\n",
			`FILE, near line 2 ("\tmax_body_bytes: 1024"): a tab; indent with spaces only; HOW`},
		"indented too deep": {"http:\n  max_body_bytes: 1\n   read_timeout: 2s\n",
			`FILE, near line 3 ("   read_timeout: 2s"): a colon and a space inside a value (put the value in quotes), ` +
				`or a key indented deeper than the one before it; HOW`},
		"twice": {"listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
			`FILE, near line 2 ("listen: 127.0.0.1:2"): a setting given twice ("listen" already defined at line 1); keep one; HOW`},
		"unclosed quote": {"listen: \"127.0.0.1:1\n",
			`FILE, near line 2: the file ends inside a quoted value or a bracket; close it; HOW`},
		"unforeseen": {"listen: [\n",
			`FILE, near line 1 ("listen: ["): not YAML jwtd can read (the YAML parser says: did not find expected node content); HOW`},
	} {
		path := writeConfig(t, tc.text)
		_, err := load(t, nil, map[string]string{"JWTD_CONFIG": path})
		want := strings.NewReplacer("FILE", path, "HOW", how).Replace(tc.want)
		if err == nil || err.Error() != want {
			t.Errorf("%s: got  %v\nwant %s", name, err, want)
		}
	}
	_, err := load(t, nil, map[string]string{"JWTD_CONFIG": "/nonexistent/jwtd.yaml"})
	if err == nil || !strings.Contains(err.Error(), "reading /nonexistent/jwtd.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("listen: 127.0.0.1:1\n")
	f.Add("keys:\n  - {kid: a, alg: HS256, secret: x}\nprofiles:\n  default: {key: a, ttl: 1m}\n")
	f.Add("profiles: [1, 2]\n")
	// One file, written again for each input (a fuzzing process runs its
	// inputs one at a time): a directory made and removed per input was a
	// sixth of an input's time.
	p := filepath.Join(f.TempDir(), "c.yaml")
	f.Fuzz(func(t *testing.T, text string) {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		AddFlags(fs)
		c, err := Load(fs, func(k string) string {
			if k == "JWTD_CONFIG" {
				return p
			}
			return ""
		})
		if err == nil && c.Validate() != nil {
			t.Fatal("Load returned a configuration that does not validate")
		}
	})
}

// A relative data_dir in the file is relative to the file; one that would
// move an existing installation's data (earlier versions read it from the
// working directory) is refused with the fix, not started afresh.
func TestDataDirRelativeToTheFile(t *testing.T) {
	path := writeConfig(t, "data_dir: state\n")
	t.Chdir(t.TempDir())
	c, err := load(t, []string{"--config", path}, nil)
	if err != nil || c.DataDir != filepath.Join(filepath.Dir(path), "state") {
		t.Fatalf("data_dir %q, %v", c.DataDir, err)
	}
	if err := os.MkdirAll(filepath.Join("state", "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = load(t, []string{"--config", path}, nil)
	if err == nil || !strings.Contains(err.Error(), "earlier versions") || !strings.Contains(err.Error(), "write data_dir:") {
		t.Errorf("an installation's data in the working directory: %v", err)
	}
	// Once the file's directory has its own, or the path is given
	// otherwise, nothing is refused.
	if c, err := load(t, []string{"--config", path, "--data-dir", "state"}, nil); err != nil || c.DataDir != "state" {
		t.Errorf("--data-dir: %q %v", c.DataDir, err)
	}
	if err := os.MkdirAll(filepath.Join(filepath.Dir(path), "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, []string{"--config", path}, nil); err != nil {
		t.Errorf("with the file's own data directory: %v", err)
	}
}

// examples/jwtd.yaml lists every setting of the configuration type: each
// one is a key in the file, and a field of a list's entries (keys,
// api_keys), which the file leaves empty, is shown in a comment. The file
// also loads as it is.
func TestExampleListsEverySetting(t *testing.T) {
	const example = "../../examples/jwtd.yaml"
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Parser().Unmarshal(text)
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	var flatten func(v any, path string)
	flatten = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				flatten(sub, join(path, k))
			}
		case []any:
			for i, sub := range v {
				flatten(sub, fmt.Sprintf("%s[%d]", path, i))
			}
		}
		written = append(written, path)
	}
	flatten(data, "")
	for _, setting := range Paths() {
		pattern := regexp.QuoteMeta(setting)
		pattern = strings.ReplaceAll(pattern, `\*`, `[^.]+`)
		pattern = strings.ReplaceAll(pattern, `\[\]`, `\[\d+\]`)
		re := regexp.MustCompile("^" + pattern + "$")
		if slices.ContainsFunc(written, re.MatchString) {
			continue
		}
		if list, field, ok := strings.Cut(setting, "[]."); ok && bytes.Contains(text, []byte(field+":")) &&
			regexp.MustCompile(`(?m)^`+list+`: \[\]`).Match(text) {
			continue // an empty list, its entries' fields in comments
		}
		t.Errorf("%s does not list %s", example, setting)
	}
	if _, err := load(t, nil, map[string]string{"JWTD_CONFIG": example}); err != nil {
		t.Errorf("%s does not load: %v", example, err)
	}
}

// A JWTD_ variable jwtd does not read is found, with the one most likely
// meant; those it reads, those of its tests and scripts, and variables of
// other programs are not.
func TestConfigUnreadEnv(t *testing.T) {
	got := UnreadEnv([]string{
		"JWTD_LISEN=127.0.0.1:9090", "JWTD_LISTEN=127.0.0.1:8080", "JWTD_MASTER_KEY=x", "JWTD_CONFIG=c.yaml",
		"JWTD_DATADIR=d", "JWTD_LOG=debug", "JWTD_FROBNICATE=1", "JWTD_TEST_REQUIRE_SERVICES=1", "JWTD_BIN=b",
		"HOME=/root", "LISTEN=x", "JWTD_MASTER_KEYS=y",
	})
	want := []UnreadVar{
		{"JWTD_LISEN", "JWTD_LISTEN"}, {"JWTD_DATADIR", "JWTD_DATA_DIR"}, {"JWTD_LOG", "JWTD_LOG_LEVEL"},
		{"JWTD_FROBNICATE", ""}, {"JWTD_MASTER_KEYS", "JWTD_MASTER_KEY"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if s := want[0].String(); s != "JWTD_LISEN is set, but jwtd reads no such variable; did you mean JWTD_LISTEN?" {
		t.Errorf("%s", s)
	}
	if s := want[3].String(); !strings.HasSuffix(s, "it reads "+EnvNames()) || !strings.Contains(s, "JWTD_MASTER_KEY") {
		t.Errorf("%s", s)
	}
}

// The domain packages' configuration types carry no tags: their settings
// are their fields' names in snake case, for the decoder, the check for
// unknown settings and the names in errors alike.
func TestSettingNames(t *testing.T) {
	for field, want := range map[string]string{
		"VerifyKeys": "verify_keys", "TTL": "ttl", "PrivateKeyFile": "private_key_file",
		"SHA256": "sha256", "DataClaim": "data_claim", "Kid": "kid", "rotate_every": "rotate_every",
	} {
		if got := snakeCase(field); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", field, got, want)
		}
	}
	if got := settingPath("profiles[My.Profile].Managed.RotateEvery"); got != "profiles[My.Profile].managed.rotate_every" {
		t.Errorf("settingPath: %q", got)
	}
	if got := settingPath("keys[0].PrivateKeyFile"); got != "keys[0].private_key_file" {
		t.Errorf("settingPath: %q", got)
	}
	c, err := load(t, []string{"--config", writeConfig(t, "keys:\n  - {kid: a, alg: HS256, secret: x, publish_only: true}\n  - {kid: b, alg: HS256, secret: y}\n"+
		"profiles:\n  default: {key: b, verify_keys: [a], data_claim: d, store_token: true, managed: null}\n"+
		"api_keys:\n  - {name: ops, sha256: "+strings.Repeat("ab", 32)+", scopes: [admin]}\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Profiles["default"]
	if !slices.Equal(p.VerifyKeys, []string{"a"}) || p.DataClaim != "d" || !p.StoreToken || !c.Keys[0].PublishOnly || c.APIKeys[0].SHA256 == "" {
		t.Errorf("snake-case settings not decoded: %+v, %+v, %+v", p, c.Keys, c.APIKeys)
	}
	_, err = load(t, []string{"--config", writeConfig(t, "profiles:\n  default: {verifykeys: [a]}\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean profiles.default.verify_keys?") {
		t.Errorf("a setting written without its underscore: %v", err)
	}
}
