package curvature

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/kron"
)

// replicatedBlock is a Replicated block of this package with checkpoints
// and stages.
type replicatedBlock interface {
	checkpointed
	Replicated
	Staged
}

// replicatedCases are the cases of checkpointCases whose block is
// Replicated (KFACBlock, EKFACBlock, ShampooBlock, SOAPBlock).
func replicatedCases() []checkpointCase {
	var cs []checkpointCase
	for _, tc := range checkpointCases {
		if _, ok := tc.fresh().(Replicated); ok {
			cs = append(cs, tc)
		}
	}
	return cs
}

// replicatedLambdas are the dampings of the rounds of the tests: a round
// is an Update of both blocks, a Refresh of A and the installation of its
// message into B.
var replicatedLambdas = []float64{0.1, 0.01, 0.05}

// refreshed refreshes b with RefreshDamped from lambda, failing the test on
// an error.
func refreshed(t *testing.T, b Block, lambda float64) {
	t.Helper()
	if _, err := RefreshDamped(b, lambda, kron.Retry{}); err != nil {
		t.Fatal(err)
	}
}

// TestReplicatedInstall proves that a block B given the records of a block
// A, which installs the message of A's Refresh (InstallRefresh of
// AppendRefresh) instead of refreshing, is A bit for bit: Ready, Damping,
// Scale, π, Mul, Precondition on every path and the checkpoint, after each
// of three rounds (Update, Refresh/Install) and after an Update that
// follows, so that EKFAC's scaling S and SOAP's moments, estimated in the
// installed basis and carried into the next (which the message sends), are
// exercised. AppendRefresh appends to a dst it is given.
func TestReplicatedInstall(t *testing.T) {
	for _, tc := range replicatedCases() {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.fresh().(replicatedBlock), tc.fresh().(replicatedBlock)
			probe := tc.record(50)
			for round, lambda := range replicatedLambdas {
				l := tc.record(uint64(100 + round))
				a.Update(l)
				b.Update(l)
				refreshed(t, a, lambda)
				msg := a.AppendRefresh(nil)
				prefix := []byte("prefix")
				if got := a.AppendRefresh(prefix); !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], msg) {
					t.Fatalf("round %d: AppendRefresh(dst) is not dst followed by the message", round)
				}
				if err := b.InstallRefresh(msg); err != nil {
					t.Fatalf("round %d: InstallRefresh: %v", round, err)
				}
				if !b.Ready() || b.(interface{ Damping() float64 }).Damping() != a.(interface{ Damping() float64 }).Damping() {
					t.Fatalf("round %d: Ready %t, damping %v after InstallRefresh, want true, %v", round,
						b.Ready(), b.(interface{ Damping() float64 }).Damping(), a.(interface{ Damping() float64 }).Damping())
				}
				checkSame(t, tc, a, b, probe)
			}
			l := tc.record(110)
			a.Update(l)
			b.Update(l)
			checkSame(t, tc, a, b, probe)
			switch a := a.(type) {
			case *EKFACBlock:
				if a.s.Count() < 3 {
					t.Errorf("EKFAC's scaling averaged %d estimates, want ≥ 3", a.s.Count())
				}
			case *SOAPBlock:
				if a.m.Count() < 2 {
					t.Errorf("SOAP's moments averaged %d estimates, want ≥ 2", a.m.Count())
				}
			}
		})
	}
}

// TestReplicatedStaged proves that Begin, InstallRefresh (once, or twice,
// which needs a third factorization) and Rollback leave B as it was at
// Begin, its checkpoint identical, before its first installation (not
// Ready) and after others; and that B, rolled back, then installs the
// message and is A bit for bit.
func TestReplicatedStaged(t *testing.T) {
	for _, tc := range replicatedCases() {
		for _, installs := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d installs", tc.name, installs), func(t *testing.T) {
				a, b := tc.fresh().(replicatedBlock), tc.fresh().(replicatedBlock)
				probe := tc.record(50)
				for round, lambda := range replicatedLambdas {
					l := tc.record(uint64(120 + round))
					a.Update(l)
					b.Update(l)
					refreshed(t, a, lambda)
					msg := a.AppendRefresh(nil)
					before, ready := marshal(t, b), b.Ready()
					b.Begin()
					for i := 0; i < installs; i++ {
						if err := b.InstallRefresh(msg); err != nil {
							t.Fatalf("round %d: InstallRefresh in a stage: %v", round, err)
						}
					}
					if !b.Ready() {
						t.Fatalf("round %d: not Ready after InstallRefresh", round)
					}
					b.Rollback()
					if !bytes.Equal(marshal(t, b), before) || b.Ready() != ready {
						t.Fatalf("round %d: the block after Rollback differs from that at Begin", round)
					}
					if err := b.InstallRefresh(msg); err != nil {
						t.Fatalf("round %d: InstallRefresh: %v", round, err)
					}
					checkSame(t, tc, a, b, probe)
				}
			})
		}
	}
}

// refreshPayload returns the offset of the payload of a message of
// AppendRefresh of the block kind (its damping, then the nested
// factorization) and its end.
func refreshPayload(msg []byte, kind string) (start, end int) {
	return payload(msg, kind+".Refresh")
}

// TestReplicatedCorrupt proves that InstallRefresh refuses data that is
// not the message of a Refresh of a block of the same kind and shape, with
// an error prefixed "curvature: <Block>.InstallRefresh: " wrapping
// ErrCorruptCheckpoint, B unchanged (its checkpoint, Ready), whether B is
// Ready or not yet: nil, empty and truncated data, every flipped byte
// (checksum), the messages of the other kinds and B's own checkpoint, the
// messages of blocks of the same kind with another n_in or n_out, and,
// with the checksum recomputed, a damping that is NaN, negative or
// infinite and a corrupt nested factorization; for K-FAC, a damping that
// disagrees with that of the factorization; for SOAP, a message with
// moments into a block without (and the reverse). B then installs the
// good message and is A bit for bit.
func TestReplicatedCorrupt(t *testing.T) {
	kinds := map[string]func() replicatedBlock{
		"KFACBlock":    func() replicatedBlock { return &KFACBlock{} },
		"EKFACBlock":   func() replicatedBlock { return &EKFACBlock{} },
		"ShampooBlock": func() replicatedBlock { return &ShampooBlock{} },
		"SOAPBlock":    func() replicatedBlock { return &SOAPBlock{} },
	}
	for _, tc := range replicatedCases() {
		// The messages of the other kinds and shapes: a block updated with
		// two records and refreshed twice (moments for SOAP).
		messageOf := func(b replicatedBlock, n, in, out int) []byte {
			for k := uint64(1); k <= 2; k++ {
				b.Update(blockRecord(130+k, n, in, out, n, false))
				refreshed(t, b, 0.1)
			}
			return b.AppendRefresh(nil)
		}
		others := map[string][]byte{}
		for kind, fresh := range kinds {
			if kind != tc.kind {
				others["kind "+kind] = messageOf(fresh(), tc.n, tc.in, tc.out)
			}
		}
		others["n_in+1"] = messageOf(tc.fresh().(replicatedBlock), tc.n, tc.in+1, tc.out)
		others["n_out+1"] = messageOf(tc.fresh().(replicatedBlock), tc.n, tc.in, tc.out+1)
		if tc.in > 1 {
			others["n_in-1"] = messageOf(tc.fresh().(replicatedBlock), tc.n, tc.in-1, tc.out)
		}

		for _, rounds := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/after %d installs", tc.name, rounds), func(t *testing.T) {
				a, b := tc.fresh().(replicatedBlock), tc.fresh().(replicatedBlock)
				var first []byte // the message of A's first Refresh
				for round := 0; round <= rounds; round++ {
					l := tc.record(uint64(140 + round))
					a.Update(l)
					b.Update(l)
					refreshed(t, a, replicatedLambdas[round])
					if round == 0 {
						first = a.AppendRefresh(nil)
					}
					if round < rounds {
						if err := b.InstallRefresh(a.AppendRefresh(nil)); err != nil {
							t.Fatal(err)
						}
					}
				}
				msg := a.AppendRefresh(nil)
				prefix := "curvature: " + tc.kind + ".InstallRefresh: "
				refused := func(what string, d []byte) {
					t.Helper()
					before, ready := marshal(t, b), b.Ready()
					err := b.InstallRefresh(d)
					switch {
					case err == nil:
						t.Errorf("%s: no error", what)
					case !errors.Is(err, ErrCorruptCheckpoint):
						t.Errorf("%s: error %q does not wrap ErrCorruptCheckpoint", what, err)
					case !strings.HasPrefix(err.Error(), prefix):
						t.Errorf("%s: error %q, want prefix %q", what, err, prefix)
					}
					if !bytes.Equal(marshal(t, b), before) || b.Ready() != ready {
						t.Errorf("%s: the block changed", what)
					}
				}
				refused("nil", nil)
				refused("empty", []byte{})
				refused("half", msg[:len(msg)/2])
				refused("last byte cut", msg[:len(msg)-1])
				refused("checksum cut", msg[:len(msg)-4])
				refused("a byte more", append(bytes.Clone(msg), 0))
				for i := 0; i < len(msg); i += 1 + i/32 {
					d := bytes.Clone(msg)
					d[i] ^= 0x10
					refused(fmt.Sprintf("byte %d flipped", i), d)
				}
				for name, d := range others {
					refused(name, d)
				}
				refused("checkpoint", marshal(t, a))

				start, end := refreshPayload(msg, tc.kind)
				alter := func(what string, f func(d []byte)) {
					t.Helper()
					d := bytes.Clone(msg)
					f(d)
					refused(what, reframe(d))
				}
				putFloat := func(v float64) func([]byte) {
					return func(d []byte) { binary.LittleEndian.PutUint64(d[start:], math.Float64bits(v)) }
				}
				alter("damping NaN", putFloat(math.NaN()))
				alter("damping -1", putFloat(-1))
				alter("damping +Inf", putFloat(math.Inf(1)))
				// The nested factorization: its length at start+8, its
				// bytes after; the last is in its own checksum.
				nested := int(binary.LittleEndian.Uint64(msg[start+8:]))
				if start+16+nested > end {
					t.Fatalf("nested factorization of %d bytes in a payload of %d", nested, end-start)
				}
				alter("nested checksum", func(d []byte) { d[start+16+nested-1] ^= 1 })
				alter("nested length", func(d []byte) { binary.LittleEndian.PutUint64(d[start+8:], uint64(nested+8)) })
				if tc.kind == "KFACBlock" {
					alter("damping of another factorization", putFloat(2*a.(*KFACBlock).Damping()))
				}
				if tc.kind == "SOAPBlock" && rounds > 0 {
					// B holds moments, the first message has none.
					refused("message without moments", first)
				}

				if err := b.InstallRefresh(msg); err != nil {
					t.Fatalf("the good message after the refused ones: %v", err)
				}
				checkSame(t, tc, a, b, tc.record(50))
			})
		}
	}

	// SOAP: a message with moments into a block without.
	a, b := &SOAPBlock{}, &SOAPBlock{}
	for k := uint64(1); k <= 2; k++ {
		l := blockRecord(150+k, 6, 4, 3, 6, false)
		a.Update(l)
		refreshed(t, a, 0.1)
	}
	b.Update(blockRecord(151, 6, 4, 3, 6, false))
	before := marshal(t, b)
	if err := b.InstallRefresh(a.AppendRefresh(nil)); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Errorf("SOAP message with moments into a block without: %v, want ErrCorruptCheckpoint", err)
	}
	if !bytes.Equal(marshal(t, b), before) {
		t.Error("SOAP: the block changed")
	}
}

// TestReplicatedNotReady proves that InstallRefresh before the block has a
// shape returns an error (ErrNoEstimate, as Refresh before Update) and
// leaves it as it was, and that AppendRefresh on a block that is not Ready
// (new, or updated but not refreshed) panics with a "curvature: " message.
func TestReplicatedNotReady(t *testing.T) {
	for _, tc := range replicatedCases() {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.fresh().(replicatedBlock)
			a.Update(tc.record(1))
			refreshed(t, a, 0.1)
			msg := a.AppendRefresh(nil)

			b := tc.fresh().(replicatedBlock)
			before := marshal(t, b)
			err := b.InstallRefresh(msg)
			if err == nil || !errors.Is(err, ErrNoEstimate) || !strings.HasPrefix(err.Error(), "curvature: ") {
				t.Errorf("InstallRefresh on a new block: %v, want an error wrapping ErrNoEstimate", err)
			}
			if b.Ready() || !bytes.Equal(marshal(t, b), before) {
				t.Error("InstallRefresh on a new block changed it")
			}

			expectPanic(t, "AppendRefresh on a new block", func() { b.AppendRefresh(nil) }, "AppendRefresh")
			b.Update(tc.record(1))
			expectPanic(t, "AppendRefresh before Refresh", func() { b.AppendRefresh(nil) }, "AppendRefresh")
		})
	}
}

// TestReplicatedRefreshCost proves that RefreshCost is 0 before the shape
// is fixed, (n_in+1)³ + n_out³ after the first Update (and after later
// ones), and 0 again when a stage that fixed the shape is rolled back.
func TestReplicatedRefreshCost(t *testing.T) {
	for _, tc := range replicatedCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.fresh().(replicatedBlock)
			if c := b.RefreshCost(); c != 0 {
				t.Errorf("RefreshCost of a new block = %v, want 0", c)
			}
			na, ng := float64(tc.in+1), float64(tc.out)
			want := na*na*na + ng*ng*ng
			b.Begin()
			b.Update(tc.record(1))
			if c := b.RefreshCost(); c != want {
				t.Errorf("RefreshCost after the first Update = %v, want %v", c, want)
			}
			b.Rollback()
			if c := b.RefreshCost(); c != 0 {
				t.Errorf("RefreshCost after a Rollback of the first Update = %v, want 0", c)
			}
			b.Update(tc.record(1))
			b.Update(tc.record(2))
			refreshed(t, b, 0.1)
			if c := b.RefreshCost(); c != want {
				t.Errorf("RefreshCost after Updates and a Refresh = %v, want %v", c, want)
			}
		})
	}
}
