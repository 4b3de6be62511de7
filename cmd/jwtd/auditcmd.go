package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/sqlite"
)

const auditUsage = `Usage:
  jwtd audit verify                          check every chain of the audit trail; exit 1 naming the first broken link
  jwtd audit export [--since T] [--until T] [--format jsonl]  print entries, oldest first, one JSON object a line
  jwtd audit replay [--since T] FILE|-       re-apply the revocations of an exported trail (after a restore)
`

func cmdAudit(ctx context.Context, args []string, e env) error {
	sub, rest, err := subcommand(args, e, "audit", auditUsage, "verify", "export", "replay")
	switch {
	case sub == "" || err != nil:
		return err
	case sub == "verify":
		return cmdAuditVerify(ctx, rest, e)
	case sub == "replay":
		return cmdAuditReplay(ctx, rest, e)
	}
	return cmdAuditExport(ctx, rest, e)
}

// openStoreForCLI loads the configuration and opens the store alone: no
// keys, no master key.
func openStoreForCLI(ctx context.Context, fs *pflag.FlagSet, e env) (*config.Config, storage, error) {
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := openStore(ctx, cfg, logger, nil)
	return cfg, s, err
}

func cmdAuditVerify(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd audit verify", "jwtd audit verify", e, "data_dir", "store.url")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	_, s, err := openStoreForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer s.Close()
	reports, err := audit.Verify(ctx, s)
	for _, r := range reports {
		from := "its first entry"
		if r.First > 1 {
			from = fmt.Sprintf("entry %d (older ones purged by audit.retention)", r.First)
		}
		fmt.Fprintf(e.stdout, "chain %s: %d entries from %s; head seq %d hash %s\n", r.Chain, r.Entries, from, r.Head.Seq, r.Head.Hash)
	}
	var br *audit.Break
	if errors.As(err, &br) {
		fmt.Fprintf(e.stdout, "BROKEN: %v\n", br)
		return exitCode(1)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %d chains verified; compare each head with the last \"audit\" log line of its instance to find entries removed at the end\n", len(reports))
	return nil
}

// timeFlag reads an RFC 3339 time or a duration back from now ("24h").
func timeFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: give an RFC 3339 time (2026-12-01T00:00:00Z) or a duration back from now (24h)", name, v)
}

func cmdAuditExport(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd audit export", "jwtd audit export [--since T] [--until T] [--format jsonl]", e, "data_dir", "store.url")
	since := fs.String("since", "", "first entry's time: RFC 3339, or a duration back from now (24h)")
	until := fs.String("until", "", "entries before this time: RFC 3339, or a duration back from now")
	format := fs.String("format", "jsonl", "jsonl: one JSON object a line")
	if help, err := parseFlagsNoArgs(fs, args); help || err != nil {
		return err
	}
	if *format != "jsonl" {
		return usageError(fs, fmt.Sprintf("--format %q: the one format is jsonl", *format))
	}
	now := time.Now()
	q := audit.Query{Order: audit.Oldest, Limit: 1000}
	var err error
	if q.Since, err = timeFlag("since", *since, now); err != nil {
		return usageError(fs, err.Error())
	}
	if q.Until, err = timeFlag("until", *until, now); err != nil {
		return usageError(fs, err.Error())
	}
	_, s, err := openStoreForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer s.Close()
	w := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(w)
	for {
		page, err := audit.List(ctx, s, q)
		if err != nil {
			return err
		}
		for _, en := range page.Entries {
			if err := enc.Encode(en); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return w.Flush()
		}
		q.After = page.Next
	}
}

// cmdAuditReplay re-applies the revocations an exported trail holds: after
// a store is restored from a backup, the tokens revoked since it was taken
// are revoked again (at their first revocation's time). Revoking is
// idempotent, so replaying more than needed changes nothing.
func cmdAuditReplay(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd audit replay", "jwtd audit replay [--since T] FILE|-", e, "data_dir", "store.url")
	since := fs.String("since", "", "replay entries from this time (the backup's): RFC 3339, or a duration back from now")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(fs, "give the exported trail's file, or - for stdin")
	}
	from, err := timeFlag("since", *since, time.Now())
	if err != nil {
		return usageError(fs, err.Error())
	}
	var in io.Reader = e.stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	_, s, err := openStoreForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer s.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	entries, revoked, line := 0, 0, 0
	for sc.Scan() {
		line++
		var en audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			return fmt.Errorf("line %d: not an exported audit entry: %v", line, err)
		}
		if en.Action != audit.ActionRevoke || en.Result != audit.ResultOK || en.Time.Before(from) {
			continue
		}
		entries++
		var n int
		switch kind, id, _ := strings.Cut(en.Target, ":"); kind {
		case "jti":
			n, err = s.RevokeJTI(ctx, id, en.Time)
		case "xid":
			n, err = s.RevokeXID(ctx, id, en.Time)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		revoked += n
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "replayed %d revocations: %d tokens revoked again (the others were revoked already, or are not in the store)\n", entries, revoked)
	return nil
}

// cmdBackup copies the embedded store while jwtd serves.
func cmdBackup(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("jwtd backup", "jwtd backup [flags] FILE", e, "data_dir", "store.url")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(fs, "give the file to write the backup to (it must not exist)")
	}
	cfg, s, err := openStoreForCLI(ctx, fs, e)
	if err != nil {
		return err
	}
	defer s.Close()
	db, ok := s.(*sqlite.Store)
	if !ok {
		return fmt.Errorf("jwtd backup copies the embedded SQLite store; for MongoDB use mongodump --oplog (docs/audit-and-backup.md)")
	}
	began := time.Now().UTC()
	if err := db.Backup(ctx, fs.Arg(0)); err != nil {
		return err
	}
	t := audit.NewTrail(s, audit.Options{Chain: cfg.AuditInstance(), Timeout: cfg.Store.Timeout})
	err = t.Commit(ctx, audit.Entry{Actor: audit.ActorCLI, Action: audit.ActionBackup, Target: "file:" + fs.Arg(0),
		Detail: "began=" + began.Format(time.RFC3339Nano)})
	t.Close()
	if err != nil {
		fmt.Fprintf(e.stderr, "jwtd: warning: the audit entry of the backup could not be written: %v\n", err)
	}
	fmt.Fprintf(e.stdout, "backup of %s written to %s; it holds every record committed before %s.\n"+
		"After restoring it, replay the revocations made since: jwtd audit export --since %s from the old store or your SIEM's copy, then jwtd audit replay --since %s FILE\n",
		db.Path(), fs.Arg(0), began.Format(time.RFC3339Nano), began.Format(time.RFC3339), began.Format(time.RFC3339))
	return nil
}
