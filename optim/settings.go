package optim

import "fmt"

// setting is one float setting of an optimizer, for validate.
type setting struct {
	name  string
	value float64
	unit  bool // in [0, 1) rather than finite and ≥ 0
}

// rate and unit describe settings that must be finite and ≥ 0, or in [0, 1).
func rate(name string, v float64) setting { return setting{name: name, value: v} }
func unit(name string, v float64) setting { return setting{name: name, value: v, unit: true} }

// validate returns an error, prefixed "optim: <method>:", naming the first
// setting out of its range, or nil. It is the settings check of the
// first-order methods (Rules.validate checks the curvature-based ones).
func validate(method string, ss ...setting) error {
	for _, s := range ss {
		if s.unit && !(s.value >= 0 && s.value < 1) {
			return fmt.Errorf("optim: %s: %s=%g, want in [0, 1)", method, s.name, s.value)
		}
		if !s.unit && !finiteNonNeg(s.value) {
			return fmt.Errorf("optim: %s: %s=%g, want finite and ≥ 0 (0 for the default)", method, s.name, s.value)
		}
	}
	return nil
}
