package sitesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// controlMux serves the /_sim/ endpoints listed in the package documentation.
func (s *Site) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.log.snapshot(r.URL.Query().Get("prefix")))
	})
	resetLog := func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("DELETE /_sim/requests", resetLog)
	mux.HandleFunc("POST /_sim/reset", resetLog)
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		window := time.Second
		if v := r.URL.Query().Get("window"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, "window: want a positive duration such as 500ms")
				return
			}
			window = d
		}
		writeJSON(w, http.StatusOK, s.Stats(window))
	})
	mux.HandleFunc("GET /_sim/books", func(w http.ResponseWriter, r *http.Request) {
		with, _ := strconv.ParseBool(r.URL.Query().Get("chapters"))
		writeJSON(w, http.StatusOK, s.books(with))
	})
	mux.HandleFunc("GET /_sim/books/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := s.Book(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, ErrUnknownBook.Error())
			return
		}
		writeJSON(w, http.StatusOK, b)
	})
	mux.HandleFunc("GET /_sim/categories", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Categories())
	})
	mux.HandleFunc("POST /_sim/books/{id}/grow", func(w http.ResponseWriter, r *http.Request) {
		n := 1
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n <= 0 {
				writeError(w, http.StatusBadRequest, "n: want a positive integer")
				return
			}
		}
		id := r.PathValue("id")
		writeChanged(w, s, id, s.AddChapters(id, n))
	})
	mux.HandleFunc("POST /_sim/books/{id}/cut", func(w http.ResponseWriter, r *http.Request) {
		keep, err := strconv.Atoi(r.URL.Query().Get("keep"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "keep: want the number of chapters to keep")
			return
		}
		id := r.PathValue("id")
		writeChanged(w, s, id, s.CutChapters(id, keep))
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var rules []FaultRule
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&rules); err != nil {
			writeError(w, http.StatusBadRequest, "body: want a JSON array of fault rules: "+err.Error())
			return
		}
		appendRules, _ := strconv.ParseBool(r.URL.Query().Get("append"))
		if err := s.faults.set(rules, appendRules); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		_ = s.SetFaults() // no rules: cannot fail
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeChanged answers a change to book id: err as 404 (an unknown book) or 400, else
// the book's BookInfo without its chapters.
func writeChanged(w http.ResponseWriter, s *Site, id string, err error) {
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrUnknownBook) {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}
	b, _ := s.Book(id)
	b.Chapters = nil
	writeJSON(w, http.StatusOK, b)
}
