package sqlite

// Stats returns how many transactions and records the group committer has
// committed (recordtest.StatsStore, for the tests and benchmarks).
func (s *Store) Stats() (commits, records uint64) { return s.group.Stats() }
