package agent

// Parses counts the files s parsed rather than took from its blob cache.
func Parses(s *Source) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parses
}
