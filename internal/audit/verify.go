package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ChainReport is what Verify found of one chain.
type ChainReport struct {
	Chain   string
	First   int64 // the first entry's sequence number (1 unless purged)
	Entries int64
	Head    Entry
}

// Break is the first broken link Verify met.
type Break struct {
	Chain  string
	Seq    int64 // the entry where the chain breaks
	Reason string
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain %q broken at seq %d: %s", b.Chain, b.Seq, b.Reason)
}

// Verify reads every chain in order and checks each entry's hash, that
// sequence numbers follow without a gap, and that each entry holds the
// hash of the one before. A chain that starts past seq 1 must start where
// a purge entry says it does (Purge writes one before it deletes). It
// returns the chains' reports and, for a broken chain, a *Break naming
// the first broken link.
func Verify(ctx context.Context, s Store) ([]ChainReport, error) {
	chains, err := s.AuditChains(ctx)
	if err != nil {
		return nil, err
	}
	type start struct {
		seq  int64
		prev string
	}
	claims := map[string][]start{} // purge claims, by chain
	var reports []ChainReport
	var firsts []Entry
	for _, c := range chains {
		r := ChainReport{Chain: c}
		var prev *Entry
		after := int64(0)
		for {
			page, err := s.AuditList(ctx, Query{Chain: c, Order: BySeq, AfterSeq: after, Limit: 1000})
			if err != nil {
				return reports, err
			}
			for i := range page {
				e := page[i]
				if e.ComputeHash() != e.Hash {
					return reports, &Break{c, e.Seq, "the entry's content does not match its hash (changed in the store)"}
				}
				if prev == nil {
					r.First = e.Seq
					firsts = append(firsts, e)
					if e.Seq == 1 && e.Prev != "" {
						return reports, &Break{c, e.Seq, "the first entry names an entry before it"}
					}
				} else {
					if e.Seq != prev.Seq+1 {
						return reports, &Break{c, prev.Seq + 1, fmt.Sprintf("entries %d to %d are missing (deleted from the store)", prev.Seq+1, e.Seq-1)}
					}
					if e.Prev != prev.Hash {
						return reports, &Break{c, e.Seq, fmt.Sprintf("the entry does not hold the hash of entry %d", prev.Seq)}
					}
				}
				if e.Action == ActionPurge {
					if chain, ok := strings.CutPrefix(e.Target, "chain:"); ok {
						var st start
						if _, err := fmt.Sscanf(e.Detail, "first=%d prev=%s", &st.seq, &st.prev); err == nil {
							claims[chain] = append(claims[chain], st)
						}
					}
				}
				r.Entries++
				prev = &page[i]
				after = e.Seq
			}
			if len(page) < 1000 {
				break
			}
		}
		if prev != nil {
			r.Head = *prev
		}
		reports = append(reports, r)
	}
	for _, f := range firsts {
		if f.Seq == 1 {
			continue
		}
		ok := false
		for _, st := range claims[f.Chain] {
			if st.seq == f.Seq && st.prev == f.Prev {
				ok = true
			}
		}
		if !ok {
			return reports, &Break{f.Chain, f.Seq - 1, fmt.Sprintf("the chain starts at entry %d and no purge entry says entries before it were purged (deleted from the store)", f.Seq)}
		}
	}
	return reports, nil
}

// purgeChunk is how many entries (in the embedded store, rows: an entry
// or a run of keyed mints') one purge statement deletes: the embedded
// store's one writer (which the group committer shares) is held for a
// chunk at a time, never for a whole purge.
const purgeChunk = 200

// Purge deletes the entries older than before from every chain, keeping
// each chain's head. Before it deletes any of a chain, it records (through
// t, and waits for it) where the chain will start, which Verify checks.
// It returns how many entries it deleted.
func Purge(ctx context.Context, s Store, t *Trail, before time.Time) (int, error) {
	chains, err := s.AuditChains(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	var errs []error
	for _, c := range chains {
		n, err := purgeChain(ctx, s, t, c, before)
		total += n
		if err != nil { // the others are purged all the same
			errs = append(errs, fmt.Errorf("purging chain %q: %w", c, err))
		}
	}
	return total, errors.Join(errs...)
}

// purgeChain is Purge of one chain.
func purgeChain(ctx context.Context, s Store, t *Trail, c string, before time.Time) (int, error) {
	first, err := s.AuditList(ctx, Query{Chain: c, Order: BySeq, Limit: 1})
	if err != nil || len(first) == 0 {
		return 0, err
	}
	keep, err := s.AuditList(ctx, Query{Chain: c, Order: BySeq, Since: before, Limit: 1})
	if err != nil {
		return 0, err
	}
	var k Entry
	if len(keep) == 1 {
		k = keep[0]
	} else if k, err = s.AuditHead(ctx, c); err != nil {
		return 0, err
	}
	if k.Seq <= first[0].Seq {
		return 0, nil
	}
	err = t.Commit(ctx, Entry{Actor: ActorJWTD, Action: ActionPurge, Target: PurgeTarget(c),
		Detail: purgeClaim(k.Seq, k.Prev)})
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := s.PurgeAudit(ctx, c, k.Seq, purgeChunk)
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}
