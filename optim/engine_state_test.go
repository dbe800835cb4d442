package optim_test

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/kron"
	"github.com/secondorder/secondorder/optim"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// curvatureSeed is the seed of the problems of the curvature checkpoint
// tests.
const curvatureSeed = 5

// curvatureBlocksSaved reports whether every block of package curvature
// implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler, which
// the checkpoints of KFAC, ACP, Newton and Preconditioned with those blocks
// need; when not, the tests of those rows fail.
func curvatureBlocksSaved() bool {
	for _, b := range []curvature.Block{&curvature.KFACBlock{}, &curvature.ACPBlock{}, &curvature.ExactBlock{}, &curvature.DiagonalBlock{}} {
		_, m := b.(encoding.BinaryMarshaler)
		_, u := b.(encoding.BinaryUnmarshaler)
		if !m || !u {
			return false
		}
	}
	return true
}

// requireSaved fails t when the row needs the blocks of package curvature
// and they cannot be saved.
func requireSaved(t *testing.T, packageBlocks bool) {
	t.Helper()
	if packageBlocks && !curvatureBlocksSaved() {
		t.Fatal("the blocks of package curvature do not implement encoding.BinaryMarshaler and BinaryUnmarshaler")
	}
}

func savedBlock(int) curvature.Block { return &optim.SavedBlock{} }

func diagonalBlock(int) curvature.Block { return &curvature.DiagonalBlock{} }

// curvatureRows are the curvature-based optimizers under test, built for a
// problem (whose Loss AdaptDamping reads): zero values, with momentum, with
// adapted damping, and Preconditioned with the test block SavedBlock,
// whose rows run whether or not the blocks of package curvature can be
// saved (packageBlocks false).
var curvatureRows = []struct {
	name          string
	packageBlocks bool
	new           func(p *optimtest.Task) checkpointer
}{
	{"KFAC", true, func(*optimtest.Task) checkpointer { return &optim.KFAC{} }},
	{"KFAC-Momentum", true, func(*optimtest.Task) checkpointer {
		return &optim.KFAC{Rules: optim.Rules{Momentum: 0.9, Rate: 0.5}, Decay: 0.9}
	}},
	{"KFAC-AdaptDamping", true, func(p *optimtest.Task) checkpointer {
		return &optim.KFAC{Rules: optim.Rules{AdaptDamping: true, Problem: optim.Problem{Loss: p.Loss}}}
	}},
	{"EKFAC", true, func(*optimtest.Task) checkpointer { return &optim.EKFAC{} }},
	{"EKFAC-Momentum", true, func(*optimtest.Task) checkpointer {
		return &optim.EKFAC{Rules: optim.Rules{Momentum: 0.9, Rate: 0.5, InversePeriod: 3}, Decay: 0.9}
	}},
	{"Shampoo", true, func(*optimtest.Task) checkpointer { return &optim.Shampoo{} }},
	{"HessianFree", true, func(p *optimtest.Task) checkpointer {
		return &optim.HessianFree{Problem: optim.Problem{Loss: p.Loss, GNVec: p.GNVec}}
	}},
	{"SOAP", true, func(*optimtest.Task) checkpointer { return &optim.SOAP{Rules: optim.Rules{InversePeriod: 3}} }},
	{"ACP", true, func(*optimtest.Task) checkpointer { return &optim.ACP{} }},
	{"ACP-Momentum", true, func(*optimtest.Task) checkpointer {
		return &optim.ACP{Rules: optim.Rules{Momentum: 0.9, InversePeriod: 7}, Decay: 0.9}
	}},
	{"Newton", true, func(*optimtest.Task) checkpointer { return &optim.Newton{} }},
	{"Newton-Momentum", true, func(*optimtest.Task) checkpointer {
		return &optim.Newton{Rules: optim.Rules{Momentum: 0.9, Nesterov: true, InversePeriod: 3}}
	}},
	{"Preconditioned-Diagonal", true, func(*optimtest.Task) checkpointer {
		return &optim.Preconditioned{ReadsBack: true, NewBlock: diagonalBlock}
	}},
	{"Preconditioned-Diagonal-Momentum", true, func(*optimtest.Task) checkpointer {
		return &optim.Preconditioned{Rules: optim.Rules{Momentum: 0.9, StatsPeriod: 2, InversePeriod: 6}, ReadsBack: true, NewBlock: diagonalBlock}
	}},
	{"Preconditioned-Saved", false, func(*optimtest.Task) checkpointer {
		return &optim.Preconditioned{NewBlock: savedBlock}
	}},
	{"Preconditioned-Saved-Nesterov", false, func(*optimtest.Task) checkpointer {
		return &optim.Preconditioned{Rules: optim.Rules{Momentum: 0.9, Nesterov: true, StatsPeriod: 3, InversePeriod: 7}, NewBlock: savedBlock}
	}},
	{"Preconditioned-Saved-AdaptDamping", false, func(p *optimtest.Task) checkpointer {
		return &optim.Preconditioned{Rules: optim.Rules{Momentum: 0.5, AdaptDamping: true, LMPeriod: 3, Problem: optim.Problem{Loss: p.Loss}}, NewBlock: savedBlock}
	}},
}

// sameReport returns an error when the reports a and b differ, NaN equal
// to NaN.
func sameReport(a, b optim.Report) error {
	if sa, sb := fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", b); sa != sb {
		return fmt.Errorf("Report straight %s, resumed %s", sa, sb)
	}
	return nil
}

// TestCurvatureCheckpointResume: for every curvature-based optimizer and
// every problem, 25 updates, a checkpoint restored into a fresh optimizer
// of the same settings and 25 more updates give the parameters, the Report
// and the checkpoint of 50 updates straight, bit for bit. 25 is past
// K-FAC's warm-up of 20 updates, and the statistics and refresh periods
// (20 by default, 2 to 7 in some rows) put refreshes on both sides of the
// checkpoint.
func TestCurvatureCheckpointResume(t *testing.T) {
	const n = 50
	for _, row := range curvatureRows {
		t.Run(row.name, func(t *testing.T) {
			requireSaved(t, row.packageBlocks)
			for i, straight := range optimtest.All(curvatureSeed) {
				t.Run(straight.Name(), func(t *testing.T) {
					optA := row.new(straight)
					run(t, optA, straight, n)

					resumed := optimtest.All(curvatureSeed)[i]
					first := row.new(resumed)
					run(t, first, resumed, n/2)
					data := marshal(t, first)
					optB := row.new(resumed)
					if err := optB.UnmarshalBinary(data); err != nil {
						t.Fatal(err)
					}
					if got := marshal(t, optB); !bytes.Equal(got, data) {
						t.Fatal("the restored optimizer's checkpoint differs from the one it was restored from")
					}
					if err := sameReport(first.Report(), optB.Report()); err != nil {
						t.Errorf("at the checkpoint: %v", err)
					}
					run(t, optB, resumed, n-n/2)

					if err := sameParams(straight.Records(), resumed.Records()); err != nil {
						t.Errorf("parameters after %d updates straight and resumed: %v", n, err)
					}
					if err := sameReport(optA.Report(), optB.Report()); err != nil {
						t.Error(err)
					}
					if !bytes.Equal(marshal(t, optA), marshal(t, optB)) {
						t.Error("checkpoints after the straight and resumed runs differ")
					}
				})
			}
		})
	}
}

// TestCurvatureCheckpointResumeExtra is TestCurvatureCheckpointResume on a
// layer with Extra parameters and a strided B (whose records have no Back
// and no Risk: Preconditioned with SavedBlock, which reads Input only, and
// the norm constraint in absolute units).
func TestCurvatureCheckpointResumeExtra(t *testing.T) {
	const n = 20
	newOpt := func() checkpointer {
		return &optim.Preconditioned{Rules: optim.Rules{Momentum: 0.8, AbsoluteNormConstraint: true, NormConstraint: 0.5, InversePeriod: 3}, NewBlock: savedBlock}
	}
	stepN := func(opt checkpointer, p *extraTask, k int) {
		for range k {
			p.Next()
			if err := opt.Step(p.Records()); err != nil {
				t.Fatal(err)
			}
		}
	}
	straight, resumed := newExtraTask(2), newExtraTask(2)
	optA := newOpt()
	stepN(optA, straight, n)
	first := newOpt()
	stepN(first, resumed, n/2)
	optB := newOpt()
	if err := optB.UnmarshalBinary(marshal(t, first)); err != nil {
		t.Fatal(err)
	}
	stepN(optB, resumed, n-n/2)
	if err := sameParams(straight.Records(), resumed.Records()); err != nil {
		t.Errorf("parameters after %d updates straight and resumed: %v", n, err)
	}
	if err := sameReport(optA.Report(), optB.Report()); err != nil {
		t.Error(err)
	}
}

// TestCurvatureCheckpointFresh: the checkpoint of an optimizer that never
// stepped restores into a fresh one, which then behaves as a fresh one.
func TestCurvatureCheckpointFresh(t *testing.T) {
	for _, row := range curvatureRows {
		t.Run(row.name, func(t *testing.T) {
			p := optimtest.Regression(curvatureSeed)
			data := marshal(t, row.new(p))
			opt := row.new(p)
			if err := opt.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if got := marshal(t, opt); !bytes.Equal(got, data) {
				t.Error("round trip of a fresh optimizer changed its checkpoint")
			}
			if err := sameReport(opt.Report(), row.new(p).Report()); err != nil {
				t.Errorf("restored fresh optimizer: %v", err)
			}
			ref := optimtest.Regression(curvatureSeed)
			run(t, row.new(ref), ref, 3)
			run(t, opt, p, 3)
			if err := sameParams(ref.Records(), p.Records()); err != nil {
				t.Errorf("restored fresh optimizer and fresh one differ: %v", err)
			}
		})
	}
}

// TestCurvatureCheckpointSettingsDiffer: a checkpoint restored into an
// optimizer whose settings differ, one setting at a time, is refused with
// an error naming the first setting that differs after defaults, and the
// optimizer is unchanged. The Preconditioned rows have stepped (SavedBlock);
// the others compare the checkpoints of optimizers that never stepped.
func TestCurvatureCheckpointSettingsDiffer(t *testing.T) {
	saved := func(r optim.Rules) func(*optimtest.Task) checkpointer {
		return func(*optimtest.Task) checkpointer { return &optim.Preconditioned{Rules: r, NewBlock: savedBlock} }
	}
	withLoss := func(r optim.Rules) func(*optimtest.Task) checkpointer {
		return func(p *optimtest.Task) checkpointer {
			r.Problem.Loss = p.Loss
			return &optim.Preconditioned{Rules: r, NewBlock: savedBlock}
		}
	}
	fixed := func(o checkpointer) func(*optimtest.Task) checkpointer {
		return func(*optimtest.Task) checkpointer { return o }
	}
	const pre = "optim: Preconditioned: checkpoint has "
	for _, tc := range []struct {
		name            string
		saved, receiver func(*optimtest.Task) checkpointer
		stepped         bool
		want            string
	}{
		{"Rate", saved(optim.Rules{}), saved(optim.Rules{Rate: 0.5}), true, pre + "Rate=1, this optimizer Rate=0.5"},
		{"Momentum", saved(optim.Rules{Momentum: 0.9}), saved(optim.Rules{Momentum: 0.8}), true, pre + "Momentum=0.9, this optimizer Momentum=0.8"},
		{"Nesterov", saved(optim.Rules{Momentum: 0.9}), saved(optim.Rules{Momentum: 0.9, Nesterov: true}), true, pre + "Nesterov=false, this optimizer Nesterov=true"},
		{"NormConstraint", saved(optim.Rules{}), saved(optim.Rules{NormConstraint: math.Inf(1)}), true, pre + "NormConstraint=0.001, this optimizer NormConstraint=+Inf"},
		{"AbsoluteNormConstraint", saved(optim.Rules{}), saved(optim.Rules{AbsoluteNormConstraint: true}), true, pre + "AbsoluteNormConstraint=false, this optimizer AbsoluteNormConstraint=true"},
		{"Undamped", saved(optim.Rules{}), saved(optim.Rules{Undamped: true}), true, pre + "Undamped=false, this optimizer Undamped=true"},
		{"Damping", saved(optim.Rules{}), saved(optim.Rules{Damping: 0.2}), true, pre + "Damping=0.1, this optimizer Damping=0.2"},
		{"AbsoluteDamping", saved(optim.Rules{}), saved(optim.Rules{AbsoluteDamping: true}), true, pre + "AbsoluteDamping=false, this optimizer AbsoluteDamping=true"},
		{"StatsPeriod", saved(optim.Rules{StatsPeriod: 2}), saved(optim.Rules{}), true, pre + "StatsPeriod=2, this optimizer StatsPeriod=1"},
		{"InversePeriod", saved(optim.Rules{}), saved(optim.Rules{InversePeriod: 4}), true, pre + "InversePeriod=1, this optimizer InversePeriod=4"},
		{"AdaptDamping", saved(optim.Rules{}), withLoss(optim.Rules{AdaptDamping: true}), true, pre + "AdaptDamping=false, this optimizer AdaptDamping=true"},
		{"LMPeriod", withLoss(optim.Rules{AdaptDamping: true}), withLoss(optim.Rules{AdaptDamping: true, LMPeriod: 2}), true, pre + "LMPeriod=5, this optimizer LMPeriod=2"},
		{"AutoRate", saved(optim.Rules{}), saved(optim.Rules{AutoRate: true}), false, pre + "AutoRate=false, this optimizer AutoRate=true"},
		{"MaxMomentum", saved(optim.Rules{}), saved(optim.Rules{MaxMomentum: 0.5}), true, pre + "MaxMomentum=0.95, this optimizer MaxMomentum=0.5"},
		{"MinDamping", saved(optim.Rules{}), saved(optim.Rules{MinDamping: 0.01}), true, pre + "MinDamping=0.03"},
		{"MaxDamping", saved(optim.Rules{}), saved(optim.Rules{MaxDamping: 10}), true, pre + "MaxDamping=1000, this optimizer MaxDamping=10"},
		{"ExtraRate", saved(optim.Rules{}), saved(optim.Rules{ExtraRate: 0.1}), true, pre + "ExtraRate=0, this optimizer ExtraRate=0.1"},
		{"Retry.Tries", saved(optim.Rules{}), saved(optim.Rules{Retry: kron.Retry{Tries: 3}}), true, pre + "Retry.Tries=10, this optimizer Retry.Tries=3"},
		{"Retry.Growth", saved(optim.Rules{}), saved(optim.Rules{Retry: kron.Retry{Growth: 2}}), true, pre + "Retry.Growth=10, this optimizer Retry.Growth=2"},
		{"ReadsBack", saved(optim.Rules{}), fixed(&optim.Preconditioned{ReadsBack: true, NewBlock: savedBlock}), true, pre + "ReadsBack=false, this optimizer ReadsBack=true"},
		{"Name", saved(optim.Rules{}), fixed(&optim.Preconditioned{Name: "Mine", NewBlock: savedBlock}), true, `optim: Mine: checkpoint has Name="Preconditioned", this optimizer Name="Mine"`},
		{"KFAC/Decay", fixed(&optim.KFAC{}), fixed(&optim.KFAC{Decay: 0.9}), false, "optim: KFAC: checkpoint has Decay=0.95, this optimizer Decay=0.9"},
		{"KFAC/Rate", fixed(&optim.KFAC{}), fixed(&optim.KFAC{Rules: optim.Rules{Rate: 0.5}}), false, "optim: KFAC: checkpoint has Rate=1, this optimizer Rate=0.5"},
		{"ACP/Alpha", fixed(&optim.ACP{}), fixed(&optim.ACP{Alpha: 2}), false, "optim: ACP: checkpoint has Alpha=0, this optimizer Alpha=2"},
		{"ACP/Decay", fixed(&optim.ACP{Decay: 0.5}), fixed(&optim.ACP{}), false, "optim: ACP: checkpoint has Decay=0.5, this optimizer Decay=0"},
		{"ACP/InversePeriod", fixed(&optim.ACP{}), fixed(&optim.ACP{Rules: optim.Rules{InversePeriod: 5}}), false, "optim: ACP: checkpoint has InversePeriod=20, this optimizer InversePeriod=5"},
		{"Newton/MaxParams", fixed(&optim.Newton{}), fixed(&optim.Newton{MaxParams: 100}), false, "optim: Newton: checkpoint has MaxParams=5000, this optimizer MaxParams=100"},
		{"Newton/Damping", fixed(&optim.Newton{}), fixed(&optim.Newton{Rules: optim.Rules{Damping: 1}}), false, "optim: Newton: checkpoint has Damping=0.1, this optimizer Damping=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := optimtest.Regression(curvatureSeed)
			opt := tc.saved(src)
			dst := optimtest.Regression(curvatureSeed + 1)
			receiver := tc.receiver(dst)
			if tc.stepped {
				run(t, opt, src, 4)
				run(t, receiver, dst, 2)
			}
			checkRefusal(t, receiver, marshal(t, opt), false, tc.want)
		})
	}
	// The defaults are filled in before comparing: explicit defaults are
	// the same settings as zero.
	data := marshal(t, &optim.KFAC{})
	explicit := &optim.KFAC{
		Rules: optim.Rules{
			Rate: optim.DefaultKFACRate, Damping: optim.DefaultKFACDamping, NormConstraint: optim.DefaultNormConstraint,
			StatsPeriod: 1, InversePeriod: optim.DefaultKFACInversePeriod, LMPeriod: optim.DefaultLMPeriod,
			MaxMomentum: optim.DefaultMaxMomentum, MinDamping: optim.DefaultMinDampingRatio * optim.DefaultKFACDamping,
			MaxDamping: optim.DefaultMaxDampingRatio * optim.DefaultKFACDamping, Retry: kron.Retry{Tries: 10, Growth: 10},
			Schedule: func(int) float64 { return 1 }, // func-valued settings are not compared
		},
		Decay: curvature.DefaultDecay,
	}
	if err := explicit.UnmarshalBinary(data); err != nil {
		t.Errorf("KFAC with its defaults written out: %v", err)
	}
	// ACP's damping is absolute whatever AbsoluteDamping says.
	acp := &optim.ACP{Rules: optim.Rules{AbsoluteDamping: true}}
	if err := acp.UnmarshalBinary(marshal(t, &optim.ACP{})); err != nil {
		t.Errorf("ACP with AbsoluteDamping: %v", err)
	}
	// Invalid settings give the error of Validate.
	bad := &optim.KFAC{Decay: 1}
	if err := bad.UnmarshalBinary(data); err == nil || !strings.Contains(err.Error(), "optim: KFAC: Decay=1") {
		t.Errorf("UnmarshalBinary with an invalid Decay: %v", err)
	}
	if _, err := bad.MarshalBinary(); err == nil || !strings.Contains(err.Error(), "optim: KFAC: Decay=1") {
		t.Errorf("MarshalBinary with an invalid Decay: %v", err)
	}
}

// TestCurvatureCheckpointCorrupt: truncated and altered checkpoints and
// another optimizer's checkpoint are refused with an error wrapping
// ErrCorruptCheckpoint, and the optimizer is unchanged.
// TestEngineCheckpointInconsistent checks the values of well-framed ones.
func TestCurvatureCheckpointCorrupt(t *testing.T) {
	for _, row := range curvatureRows {
		t.Run(row.name, func(t *testing.T) {
			requireSaved(t, row.packageBlocks)
			p := optimtest.Regression(curvatureSeed)
			opt := row.new(p)
			run(t, opt, p, 4)
			data := marshal(t, opt)
			for n := 0; n < len(data); n += 1 + n/16 {
				checkRefusal(t, opt, data[:n], true, "optim: ")
			}
			for i := 0; i < len(data); i += 1 + i/64 {
				bad := bytes.Clone(data)
				bad[i] ^= 1 << (i % 8)
				checkRefusal(t, opt, bad, true, "optim: ")
			}
		})
	}
	p := optimtest.Regression(curvatureSeed)
	pre := &optim.Preconditioned{NewBlock: savedBlock}
	run(t, pre, p, 2)
	kfac := marshal(t, &optim.KFAC{})
	checkRefusal(t, pre, kfac, true, `optim: Preconditioned: corrupt state: state of "optim.KFAC", want "optim.Preconditioned"`)
	checkRefusal(t, &optim.ACP{}, kfac, true, `optim: ACP: corrupt state: state of "optim.KFAC", want "optim.ACP"`)
	checkRefusal(t, &optim.Newton{}, marshal(t, pre), true, `optim: Newton: corrupt state: state of "optim.Preconditioned", want "optim.Newton"`)
	checkRefusal(t, &optim.KFAC{}, marshal(t, &optim.Adam{}), true, `optim: KFAC: corrupt state: state of "optim.Adam", want "optim.KFAC"`)
}

// unsavedBlock is a user's block without MarshalBinary and UnmarshalBinary.
type unsavedBlock struct{ curvature.Block }

// TestCurvatureCheckpointUnsavedBlock: a Preconditioned whose blocks do not
// implement encoding.BinaryMarshaler has no checkpoint once it has
// stepped, and one whose NewBlock makes blocks that do not implement
// encoding.BinaryUnmarshaler cannot restore one: both errors name the
// block's type, and the receiver is unchanged.
func TestCurvatureCheckpointUnsavedBlock(t *testing.T) {
	unsaved := func(int) curvature.Block { return unsavedBlock{&optim.SavedBlock{}} }
	p := optimtest.Regression(curvatureSeed)
	opt := &optim.Preconditioned{NewBlock: unsaved}
	if _, err := opt.MarshalBinary(); err != nil {
		t.Errorf("never stepped: %v", err)
	}
	run(t, opt, p, 2)
	const want = "optim: Preconditioned: layer 0: the curvature block optim_test.unsavedBlock does not implement encoding.Binary"
	if _, err := opt.MarshalBinary(); err == nil || !strings.HasPrefix(err.Error(), want+"Marshaler") {
		t.Errorf("MarshalBinary: %v, want %q", err, want+"Marshaler")
	}

	src := &optim.Preconditioned{NewBlock: savedBlock}
	run(t, src, optimtest.Regression(curvatureSeed), 2)
	dst := &optim.Preconditioned{NewBlock: savedBlock}
	run(t, dst, optimtest.Regression(curvatureSeed+1), 3)
	before := marshal(t, dst)
	dst.NewBlock = unsaved
	err := dst.UnmarshalBinary(marshal(t, src))
	if err == nil || !strings.HasPrefix(err.Error(), want+"Unmarshaler") {
		t.Errorf("UnmarshalBinary: %v, want %q", err, want+"Unmarshaler")
	}
	if errors.Is(err, optim.ErrCorruptCheckpoint) {
		t.Errorf("UnmarshalBinary: %v wraps ErrCorruptCheckpoint", err)
	}
	dst.NewBlock = savedBlock
	if after := marshal(t, dst); !bytes.Equal(after, before) {
		t.Error("the refused restore changed the optimizer")
	}
}
