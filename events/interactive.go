package events

// InteractivePagesPerBook is how many pages a reader's sync of a book fetches at reader
// priority: the book page and the first page of its chapter list; the rest go at
// background priority. The gateway charges a reader's source share by it.
const InteractivePagesPerBook = 2
