package catalog

// SearchStatement returns the SQL and arguments Search runs for s.
func SearchStatement(s Search) (string, []any, error) { return s.statement() }
