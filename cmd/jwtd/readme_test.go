//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/creack/pty"
)

// The README and docs/, tried as a newcomer would: the repository's files
// copied to a temporary directory, make build, make run on a terminal, every
// curl and jwtd (or ./bin/jwtd) command of the sh blocks of README.md and
// docs/*.md run against it, and Ctrl-C, after which make exits 0. A
// variable a page fills from a command (TOKEN=$(curl … | sed …)) is filled
// so, and passed to the page's commands after it; the admin key K, printed
// on the terminal, and the placeholders (<token>) are the real values.
// Commands that need the network or Docker (git clone, go install, docker)
// and the make targets (run here, or this test itself) are not run.
func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the repository afresh")
	}
	t.Parallel() // a clone, a port and processes of its own
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	copyTracked(t, root, dir)

	build := exec.Command("make", "build")
	build.Dir = dir
	built, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("make build: %v\n%s", err, built)
	}
	const banner = "building bin/jwtd for the first time"
	if !strings.Contains(string(built), banner) {
		t.Errorf("the first make build has no banner:\n%s", built)
	}
	addr := freeAddr(t)
	run := exec.Command("make", "run", "ARGS=--listen "+addr)
	run.Dir = dir
	tty, err := pty.Start(run)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var console bytes.Buffer
	go func() {
		r := bufio.NewReader(tty)
		for {
			line, err := r.ReadString('\n')
			mu.Lock()
			console.WriteString(line)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	jwtd := filepath.Join(dir, "bin", "jwtd")
	t.Cleanup(func() {
		// make, and jwtd, which set -m put in a process group of its own,
		// before the directory they write goes.
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
		killRunning(jwtd)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.ReplaceAll(console.String(), "\r\n", "\n") // the terminal's line ends
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(output(), `"msg":"listening"`) {
		if time.Now().After(deadline) {
			t.Fatalf("make run did not start serving:\n%s", output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := "http://" + addr
	adminKey := printedAdminKey(t, output())
	if strings.Contains(output(), banner) {
		t.Errorf("make run, bin/jwtd built, shows the first build's banner:\n%s", output())
	}

	// The values the README's placeholders stand for.
	code, out := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"this is test3"}`)
	var castlabs struct {
		Token string `json:"JWT Token"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &castlabs) != nil {
		t.Fatalf("generateToken: %d %s", code, out)
	}
	castlabsKey := cliOutput(t, dir, jwtd, "keys", "show", "--profile", "castlabs")
	code, out = httpDo(t, "POST", base+"/v1/tokens", adminKey, "application/json", `{"profile":"default","sub":"alice"}`)
	var native struct{ Token string }
	if code != 201 || json.Unmarshal([]byte(out), &native) != nil {
		t.Fatalf("mint: %d %s", code, out)
	}
	code, out = httpDo(t, "POST", base+"/v1/tokens", adminKey, "application/json", `{"profile":"default","sub":"bob"}`)
	var revocable struct{ JTI string }
	if code != 201 || json.Unmarshal([]byte(out), &revocable) != nil {
		t.Fatalf("mint: %d %s", code, out)
	}
	for range 2 { // two records of the README's phone, so that a page has a next cursor
		httpDo(t, "GET", base+"/v1/token/+14155552671/tx-cursor", "", "", "")
	}
	code, out = httpDo(t, "GET", base+"/v1/tokens?phone=%2B14155552671&limit=1", adminKey, "", "")
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &page) != nil || page.NextCursor == "" {
		t.Fatalf("a page of records: %d %s", code, out)
	}
	replacer := strings.NewReplacer(
		"http://127.0.0.1:8080", base,
		"<token>", castlabs.Token,
		"<key string, PEM public key or JWK>", jsonText(castlabsKey),
		`"jti":"…"`, `"jti":"`+revocable.JTI+`"`,
		"<next_cursor>", url.QueryEscape(page.NextCursor),
		" TOKEN", ` "$TOKEN"`,
	)

	// The README first, then docs/ in name order, against the one server.
	pages, _ := filepath.Glob(filepath.Join(dir, "docs", "*.md"))
	pages = append([]string{filepath.Join(dir, "README.md")}, pages...)
	var commands []pageCommand
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(dir, page)
		for _, c := range readmeCommands(string(text)) {
			commands = append(commands, pageCommand{name, c})
		}
	}
	bodyFile := filepath.Join(t.TempDir(), "body")
	ran := 0
	ranIn := map[string]int{}
	var filled []string // NAME=value of the variables the page's commands filled so far
	for i, pc := range commands {
		if i > 0 && commands[i-1].page != pc.page {
			filled = nil
		}
		c := pc.command
		sh := exec.Command("bash", "-c", "")
		sh.Dir = dir
		sh.Env = append(append(os.Environ(), "K="+adminKey, "TOKEN="+native.Token), filled...)
		var stdout, stderr bytes.Buffer
		sh.Stdout, sh.Stderr = &stdout, &stderr
		line := replacer.Replace(c)
		first, _, _ := strings.Cut(c, " ")
		name, _, _ := strings.Cut(c, "=")
		// K=$(… apikey create …) makes a key the running server is not
		// configured with; the admin key stands for it.
		fills := filledVariable.MatchString(c) && name != "K"
		switch {
		case fills:
			sh.Args[2] = line + `; printf %s "$` + name + `"`
		case first == "curl":
			sh.Args[2] = "curl -sS -o " + bodyFile + " -w '%{http_code}' " + strings.TrimPrefix(line, "curl ")
		case first == "jwtd" && !strings.HasPrefix(c, "jwtd serve"):
			sh.Args[2] = jwtd + strings.TrimPrefix(line, "jwtd")
		case first == "./bin/jwtd" && !strings.HasPrefix(c, "./bin/jwtd serve"):
			sh.Args[2] = line
		default:
			continue
		}
		err := sh.Run()
		ran++
		ranIn[pc.page]++
		switch {
		case err != nil:
			t.Errorf("%s: %s\n%v\n%s%s", pc.page, c, err, stdout.String(), stderr.String())
		case fills:
			// What a page's sed or CLI picks out: one token or key, never
			// an answer it failed to pick from.
			if v := stdout.String(); v == "" || strings.ContainsAny(v, " {}\n") {
				t.Errorf("%s: %s\nfilled %s with %q\n%s", pc.page, c, name, v, stderr.String())
			}
			filled = append(filled, name+"="+stdout.String())
		case first == "curl":
			status, _ := strconv.Atoi(stdout.String())
			// 2xx, but for the refusals the README shows as such.
			body, _ := os.ReadFile(bodyFile)
			if want, ok := readmeRefusals[c]; ok && status != want || !ok && (status < 200 || status > 299) {
				t.Errorf("%s: %s\nanswered %d %s", pc.page, c, status, body)
			}
			// /verifyToken and /v1/introspect answer 200 whether or not the
			// token is good.
			if strings.Contains(c, "/verifyToken") && !strings.Contains(string(body), `"Signature Verification":true`) {
				t.Errorf("%s: %s\ndid not verify: %s", pc.page, c, body)
			}
			if strings.Contains(c, "/v1/introspect") && !strings.Contains(string(body), `"active":true`) {
				t.Errorf("%s: %s\nnot active: %s", pc.page, c, body)
			}
		}
	}
	t.Logf("%d commands run: %v", ran, ranIn)
	// Floors well under today's counts: a parser that drifted from the
	// pages finds next to nothing.
	for page, least := range map[string]int{"README.md": 10, "docs/http-api.md": 15, "docs/cli.md": 5, "docs/keys.md": 3} {
		if ranIn[page] < least {
			t.Errorf("only %d commands found in %s; the parser has drifted from it", ranIn[page], page)
		}
	}

	// Ctrl-C on the terminal: jwtd stops cleanly and make exits 0.
	if _, err := tty.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("make run after Ctrl-C: %v\n%s", err, output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on Ctrl-C:\n%s", output())
	}
}

// killRunning kills the processes running the executable at path.
func killRunning(path string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range procs {
		if target, err := os.Readlink(exe); err == nil && target == path {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(exe))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// pageCommand is a command of a sh block and the page it is on.
type pageCommand struct{ page, command string }

// readmeRefusals are the README's commands that show a refusal, and its
// status.
var readmeRefusals = map[string]int{
	"curl http://127.0.0.1:8080/v1/token/4155552671/tx-1001": 400, // a national number, and no phone.default_region
}

// readmeCommands are the commands of a page's sh blocks, continuation
// lines joined and comments dropped.
func readmeCommands(readme string) []string {
	var out []string
	inBlock, pending := false, ""
	for line := range strings.Lines(readme) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
			continue
		case strings.HasPrefix(line, "```"):
			inBlock = false
			continue
		case !inBlock:
			continue
		}
		if i := strings.Index(line, " # "); i >= 0 {
			line = line[:i]
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			pending += rest + " "
			continue
		}
		if line = strings.TrimSpace(pending + line); line != "" {
			out = append(out, whitespace.ReplaceAllString(line, " "))
		}
		pending = ""
	}
	return out
}

var whitespace = regexp.MustCompile(`\s+`)

// filledVariable is a command that fills a shell variable with the output
// of commands: NAME=$(…).
var filledVariable = regexp.MustCompile(`^[A-Z][A-Z0-9_]*=\$\(.*\)$`)

// jsonText is s as the inside of a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// cliOutput runs a jwtd command in dir and returns its stdout, trimmed.
func cliOutput(t *testing.T, dir, jwtd string, args ...string) string {
	t.Helper()
	cmd := exec.Command(jwtd, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jwtd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// copyTracked copies the files of the repository under root into dir: those
// git tracks and those it would (not ignored), as this checkout has them: a
// fresh clone of what is about to be committed.
func copyTracked(t *testing.T, root, dir string) {
	t.Helper()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	list, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if err != nil {
			continue // deleted in this checkout
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(f, in)
		in.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Every page of docs/ is linked from the README, and every relative link of
// the README and docs/ reaches a file, and a heading of it when it names one
// (#anchor, as GitHub makes them).
func TestDocsLinks(t *testing.T) {
	root, _ := filepath.Abs("../..")
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	readme := filepath.Join(root, "README.md")
	readmeText, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		name, _ := filepath.Rel(root, page)
		if !strings.Contains(string(readmeText), "]("+name+")") {
			t.Errorf("README.md does not link %s", name)
		}
	}
	for _, page := range append([]string{readme}, pages...) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, page)
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			linked, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: link %s: %v", name, target, err)
				continue
			}
			if anchor != "" && !slices.Contains(headingAnchors(string(linked)), anchor) {
				t.Errorf("%s: link %s: no heading makes #%s", name, target, anchor)
			}
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors are the anchors GitHub makes of a page's headings:
// lowercased, punctuation but hyphens dropped, spaces as hyphens.
func headingAnchors(page string) []string {
	var out []string
	inFence := false
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}
