package hpsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// Recorder receives every finished trial of a search (Settings.Recorder).
// Search calls Record from one goroutine, in order of completion; a non-nil
// error stops the search.
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
// To make a search resumable, open the file for appending, read it with
// ReadHistory, and pass the trials as Settings.History together with a
// JSONRecorder on the same file.
type JSONRecorder struct {
	mu sync.Mutex
	w  io.Writer
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
	_, err = r.w.Write(line)
	return err
}

// ReadHistory reads a history written by a JSONRecorder and returns its
// trials as points of s, ordered as in the input. A record with a null
// result or an error message is a failed trial, with Value NaN and an error
// carrying the recorded message. Blank lines are skipped. It returns an error
// naming the record for malformed JSON, a missing index or point, a point
// that does not fit s (see Space.NewPoint), a bad duration, or an index that
// appears twice.
func ReadHistory(r io.Reader, s *Space) ([]Trial, error) {
	dec := json.NewDecoder(r)
	var trials []Trial
	seen := make(map[int]bool)
	for n := 1; ; n++ {
		var rec record
		err := dec.Decode(&rec)
		if err == io.EOF {
			return trials, nil
		}
		if err != nil {
			return trials, fmt.Errorf("hpsearch: history record %d: %w", n, err)
		}
		if rec.Index == nil || rec.Point == nil {
			return trials, fmt.Errorf("hpsearch: history record %d: missing index or point", n)
		}
		i := *rec.Index
		if i < 0 || seen[i] {
			return trials, fmt.Errorf("hpsearch: history record %d: index %d is negative or repeated", n, i)
		}
		seen[i] = true
		p, err := s.NewPoint(rec.Point)
		if err != nil {
			return trials, fmt.Errorf("hpsearch: history record %d: %w", n, err)
		}
		t := Trial{Index: i, Point: p, Value: math.NaN()}
		if rec.Duration != "" {
			if t.Duration, err = time.ParseDuration(rec.Duration); err != nil {
				return trials, fmt.Errorf("hpsearch: history record %d: %w", n, err)
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
