// Package state encodes the state of the module's stateful objects
// (optimizers, minibatch iterators) for checkpoints: a framed, versioned,
// checksummed little-endian record of scalars and slices, written by
// Encode and read back by Decode. A Reader never allocates more than the
// bytes it was given can hold, so a corrupt or hostile checkpoint gives an
// error, not an out-of-memory crash.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// magic starts every encoded state.
const magic = "SOST"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the errors of Decode and Reader for data that is
// truncated, has a bad checksum or does not hold what its kind says.
var ErrCorrupt = errors.New("corrupt state")

// Writer appends values to a buffer.
type Writer struct{ buf []byte }

// Uint64 appends v.
func (w *Writer) Uint64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }

// Int appends v.
func (w *Writer) Int(v int) { w.Uint64(uint64(int64(v))) }

// Float appends v, bit for bit.
func (w *Writer) Float(v float64) { w.Uint64(math.Float64bits(v)) }

// Bool appends v.
func (w *Writer) Bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Floats appends the length of v and its values.
func (w *Writer) Floats(v []float64) {
	w.Int(len(v))
	for _, x := range v {
		w.Float(x)
	}
}

// Ints appends the length of v and its values.
func (w *Writer) Ints(v []int) {
	w.Int(len(v))
	for _, x := range v {
		w.Int(x)
	}
}

// Bytes appends the length of v and its bytes.
func (w *Writer) Bytes(v []byte) {
	w.Int(len(v))
	w.buf = append(w.buf, v...)
}

// String appends s.
func (w *Writer) String(s string) { w.Bytes([]byte(s)) }

// Reader reads the values a Writer appended, in the same order. The first
// failure is kept (Err) and every later read returns zero values.
type Reader struct {
	buf []byte
	err error
}

// Err returns the first failure, wrapping ErrCorrupt.
func (r *Reader) Err() error { return r.err }

// Fail records err (wrapping ErrCorrupt) unless a failure is recorded
// already: for checks of the decoded values by the caller.
func (r *Reader) Fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf) {
		r.Fail("%s needs %d bytes, %d left", what, n, len(r.buf))
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

// Uint64 reads a uint64.
func (r *Reader) Uint64() uint64 {
	b := r.take(8, "an integer")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Int reads an int.
func (r *Reader) Int() int {
	v := int64(r.Uint64())
	if int64(int(v)) != v {
		r.Fail("integer %d out of range", v)
		return 0
	}
	return int(v)
}

// Float reads a float64.
func (r *Reader) Float() float64 { return math.Float64frombits(r.Uint64()) }

// Bool reads a bool.
func (r *Reader) Bool() bool {
	b := r.take(1, "a bool")
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.Fail("bool byte %d", b[0])
	}
	return b[0] == 1
}

// length reads a length of elements of size bytes each, checked against
// what is left.
func (r *Reader) length(size int, what string) int {
	n := r.Int()
	if r.err == nil && (n < 0 || n > len(r.buf)/size) {
		r.Fail("%s of %d elements, %d bytes left", what, n, len(r.buf))
		return 0
	}
	return n
}

// Floats reads a slice written by Writer.Floats.
func (r *Reader) Floats() []float64 {
	n := r.length(8, "floats")
	if r.err != nil {
		return nil
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float()
	}
	return v
}

// FloatsInto reads a slice written by Writer.Floats into dst, which must
// have its length.
func (r *Reader) FloatsInto(dst []float64, what string) {
	n := r.length(8, what)
	if r.err == nil && n != len(dst) {
		r.Fail("%s has %d values, want %d", what, n, len(dst))
	}
	if r.err != nil {
		return
	}
	for i := range dst {
		dst[i] = r.Float()
	}
}

// Ints reads a slice written by Writer.Ints.
func (r *Reader) Ints() []int {
	n := r.length(8, "ints")
	if r.err != nil {
		return nil
	}
	v := make([]int, n)
	for i := range v {
		v[i] = r.Int()
	}
	return v
}

// Bytes reads a slice written by Writer.Bytes.
func (r *Reader) Bytes() []byte {
	n := r.length(1, "bytes")
	b := r.take(n, "bytes")
	return append([]byte(nil), b...)
}

// String reads a string written by Writer.String.
func (r *Reader) String() string { return string(r.Bytes()) }

// Encode returns the state written by f, framed as
//
//	"SOST" | kind | version | payload | CRC-32C of all that precedes,
//
// with kind naming what is encoded (e.g. "optim.Adam") and version the
// version of its layout.
func Encode(kind string, version uint32, f func(w *Writer)) []byte {
	return AppendEncode(nil, kind, version, f)
}

// EncodedLen returns the length of the state of the given kind whose
// payload (what f writes) is n bytes long: the capacity of dst with which
// AppendEncode does not grow it. Writer.Int, Float and Uint64 write 8
// bytes, Bool 1, Floats and Ints 8 plus 8 per element, Bytes and String 8
// plus 1 per byte.
func EncodedLen(kind string, n int) int {
	return len(magic) + 8 + len(kind) + 8 + 8 + n + 4
}

// AppendEncode appends the state of Encode to dst and returns the extended
// slice. f writes straight into it, so that with a dst of capacity
// EncodedLen (or more) the only allocation is the Writer given to f (three
// words; f escapes the compiler's analysis), whatever the payload's size.
func AppendEncode(dst []byte, kind string, version uint32, f func(w *Writer)) []byte {
	start := len(dst)
	w := Writer{buf: append(dst, magic...)}
	w.String(kind)
	w.Uint64(uint64(version))
	at := len(w.buf)
	w.Int(0) // the payload's length, set once f has written it
	f(&w)
	binary.LittleEndian.PutUint64(w.buf[at:], uint64(len(w.buf)-at-8))
	return binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf[start:], castagnoli))
}

// Decode checks the frame of data (magic, kind, a version in
// [1, maxVersion], checksum) and calls f with a Reader over the payload and
// the version. f must read the whole payload; its error, the Reader's or a
// payload left unread is returned. Errors about the data wrap ErrCorrupt.
func Decode(data []byte, kind string, maxVersion uint32, f func(r *Reader, version uint32) error) error {
	if len(data) < len(magic)+4 || string(data[:len(magic)]) != magic {
		return fmt.Errorf("%w: not a state (no %q header)", ErrCorrupt, magic)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := &Reader{buf: body[len(magic):]}
	k := r.String()
	v := r.Uint64()
	payload := r.Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	if k != kind {
		return fmt.Errorf("%w: state of %q, want %q", ErrCorrupt, k, kind)
	}
	if v < 1 || v > uint64(maxVersion) {
		return fmt.Errorf("%w: %s state version %d, this code reads 1 to %d", ErrCorrupt, kind, v, maxVersion)
	}
	p := &Reader{buf: payload}
	if err := f(p, uint32(v)); err != nil {
		return err
	}
	if err := p.Err(); err != nil {
		return err
	}
	if len(p.buf) != 0 {
		return fmt.Errorf("%w: %d bytes left after the %s state", ErrCorrupt, len(p.buf), kind)
	}
	return nil
}
