package events

// InteractivePagesPerBook is how many pages a reader's sync of a book fetches at reader
// priority: the book page and the first page of its chapter list; the rest go at
// background pace (demoted: they wait like background work, without taking the tenth of
// the budget kept for it). The gateway charges a reader's source share by it.
const InteractivePagesPerBook = 2

// MaxPagesPerRefsCall is the most pages of a book's chapter list one chapter-refs call
// (SubjectRPCRefs) fetches, out of turn, at reader priority. The gateway charges such a
// call to the reader's source share by it.
const MaxPagesPerRefsCall = 3
