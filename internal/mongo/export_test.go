package mongo

// Stats returns how many batches and records have been committed
// (recordtest.StatsStore, for the benchmarks).
func (s *Store) Stats() (commits, records uint64) { return s.group.Stats() }
