package hpsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
)

// Recorder receives every finished trial of a search (Settings.Recorder).
// Search calls Record from one goroutine, in order of completion; a non-nil
// error stops the search from starting experiments, and the experiments
// still running are recorded as they finish.
type Recorder interface {
	Record(t Trial) error
}

var _ Recorder = (*JSONRecorder)(nil)

// JSONRecorder writes a search history as JSON lines, one record per finished
// experiment, each written with a single Write call:
//
//	{"index":3,"point":{"batch":64,"lr":0.001},"result":0.25,"duration":"1.5s"}
//	{"index":4,"point":{"batch":16,"lr":0.3},"result":null,"error":"diverged","duration":"0.2s"}
//
// index is Trial.Index; point holds the values by name; result is null for a
// failed experiment, whose error message is in error; duration is a Go
// duration string (time.Duration.String). ReadHistory reads it back.
//
// To make a search resumable, open the file for reading and appending
// (os.O_RDWR|os.O_APPEND), read it with ReadHistory, and pass the trials as
// Settings.History together with a JSONRecorder on the same file.
//
// A search killed while writing a record leaves a partial last line, which
// ReadHistory ignores. So that the records of the resumed search start on a
// line of their own, the first Record on a regular file (an *os.File, or
// any writer with Stat, ReadAt, Truncate and Seek) first repairs its end:
// bytes after the last newline that end before a JSON value is complete are
// truncated away, and any other last line missing its newline gets one.
// A file that cannot be read (opened write-only) is not checked. The end is
// checked again after a failed Write, so that a record written after a short
// write does not continue its partial line.
type JSONRecorder struct {
	mu      sync.Mutex
	w       io.Writer
	checked bool // the end of w was repaired, or needs no repair
}

// historyFile is the part of *os.File that JSONRecorder uses to repair the
// end of a history file.
type historyFile interface {
	Stat() (os.FileInfo, error)
	ReadAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// NewJSONRecorder returns a recorder writing to w.
func NewJSONRecorder(w io.Writer) *JSONRecorder { return &JSONRecorder{w: w} }

// record is the JSON form of a Trial.
type record struct {
	Index    *int               `json:"index"`
	Point    map[string]float64 `json:"point"`
	Result   *float64           `json:"result"`
	Error    string             `json:"error,omitempty"`
	Duration string             `json:"duration,omitempty"`
}

// Record writes t as one line.
func (r *JSONRecorder) Record(t Trial) error {
	rec := record{
		Index:    &t.Index,
		Point:    t.Point.Map(),
		Duration: t.Duration.String(),
	}
	if t.Failed() {
		rec.Error = t.Err.Error()
	} else {
		v := t.Value
		rec.Result = &v
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked {
		prefix, err := repairEnd(r.w)
		if err != nil {
			return fmt.Errorf("hpsearch: repairing the end of the history: %w", err)
		}
		r.checked = true
		line = append(prefix, line...)
	}
	if _, err = r.w.Write(line); err != nil {
		// A short write may have left a partial line: repair the end
		// again before the next record.
		r.checked = false
	}
	return err
}

// repairEnd removes a partial last line from w when w is a readable regular
// file (see JSONRecorder), and returns what to write before the next record:
// a newline when the last line is a complete JSON value without one.
func repairEnd(w io.Writer) ([]byte, error) {
	f, ok := w.(historyFile)
	if !ok {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil, nil
	}
	size := fi.Size()
	// Find the last newline, reading backwards in blocks.
	const block = 4096
	var tail []byte
	end := size
	for end > 0 {
		start := max(end-block, 0)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, nil // not readable: leave the file alone
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			tail = append(buf[i+1:], tail...)
			end = start + int64(i) + 1
			break
		}
		tail = append(buf, tail...)
		end = start
	}
	if len(tail) == 0 {
		return nil, nil
	}
	var v any
	if err := json.NewDecoder(bytes.NewReader(tail)).Decode(&v); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		// A complete value without its newline (kept, as ReadHistory
		// reads it), or bytes that are no JSON prefix (left for
		// ReadHistory to report): start the next record on its own line.
		return []byte{'\n'}, nil
	}
	if err := f.Truncate(end); err != nil {
		return nil, err
	}
	// Without O_APPEND the offset would stay past the new end.
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return nil, err
	}
	return nil, nil
}

// ReadHistory reads a history written by a JSONRecorder and returns its
// trials as points of s, ordered as in the input. A record with a null
// result or an error message is a failed trial, with Value NaN and an error
// carrying the recorded message. Blank lines are skipped. It returns an error
// naming the record for malformed JSON, a missing index or point, a point
// that does not fit s (see Space.NewPoint), a bad duration, or an index that
// appears twice.
//
// A partial last line — bytes after the last newline that end before a JSON
// value is complete, as a search killed while writing a record leaves — is
// not a record and is ignored; ReadHistoryTail returns it. A JSONRecorder on
// the same file removes it before writing (see JSONRecorder).
func ReadHistory(r io.Reader, s *Space) ([]Trial, error) {
	trials, _, err := ReadHistoryTail(r, s)
	return trials, err
}

// ReadHistoryTail is ReadHistory that also returns the partial last line it
// ignored, nil when there is none.
func ReadHistoryTail(r io.Reader, s *Space) (trials []Trial, partial []byte, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("hpsearch: reading history: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	seen := make(map[int]bool)
	for n := 1; ; n++ {
		var rec record
		off := dec.InputOffset()
		err := dec.Decode(&rec)
		if err == io.EOF {
			return trials, nil, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			if tail := bytes.TrimLeft(data[off:], " \t\r\n"); bytes.IndexByte(tail, '\n') < 0 {
				return trials, tail, nil
			}
		}
		if err != nil {
			return trials, nil, fmt.Errorf("hpsearch: history record %d: %w", n, err)
		}
		if rec.Index == nil || rec.Point == nil {
			return trials, nil, fmt.Errorf("hpsearch: history record %d: missing index or point", n)
		}
		i := *rec.Index
		if i < 0 || seen[i] {
			return trials, nil, fmt.Errorf("hpsearch: history record %d: index %d is negative or repeated", n, i)
		}
		seen[i] = true
		p, err := s.NewPoint(rec.Point)
		if err != nil {
			return trials, nil, fmt.Errorf("hpsearch: history record %d: %w", n, err)
		}
		t := Trial{Index: i, Point: p, Value: math.NaN()}
		if rec.Duration != "" {
			if t.Duration, err = time.ParseDuration(rec.Duration); err != nil {
				return trials, nil, fmt.Errorf("hpsearch: history record %d: %w", n, err)
			}
		}
		switch {
		case rec.Error != "":
			t.Err = errors.New(rec.Error)
		case rec.Result == nil:
			t.Err = ErrNotFinite
		default:
			t.Value = *rec.Result
		}
		trials = append(trials, t)
	}
}

// WriteHistory writes trials in the format of JSONRecorder.
func WriteHistory(w io.Writer, trials []Trial) error {
	var buf bytes.Buffer
	rec := NewJSONRecorder(&buf)
	for _, t := range trials {
		if err := rec.Record(t); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
