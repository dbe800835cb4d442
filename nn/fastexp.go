package nn

import "math"

// expNonPos returns exp(x) for x ≤ 0 to within a few ulp, about three times
// faster than math.Exp: Cody–Waite reduction x = k ln2 + r with |r| ≤ ln2/2,
// a degree-13 Taylor polynomial for exp(r) evaluated by Estrin's scheme
// (truncation error below 1e-17),
// and the scaling by 2^k done on the exponent bits. Arguments below −700,
// whose results are near or below the subnormal range, go to math.Exp.
func expNonPos(x float64) float64 {
	if x < -700 || x != x {
		return math.Exp(x)
	}
	const (
		log2e = 1.44269504088896338700e+00
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
	)
	const shift = 0x1.8p52 // adding it rounds to an integer in the low mantissa bits
	kf := x*log2e + shift
	k := kf - shift
	r := (x - k*ln2Hi) - k*ln2Lo
	// Estrin's scheme: shorter dependency chains than Horner's.
	r2 := r * r
	r4 := r2 * r2
	r8 := r4 * r4
	p01 := 1 + r
	p23 := 1.0/2 + r*(1.0/6)
	p45 := 1.0/24 + r*(1.0/120)
	p67 := 1.0/720 + r*(1.0/5040)
	p89 := 1.0/40320 + r*(1.0/362880)
	p1011 := 1.0/3628800 + r*(1.0/39916800)
	p1213 := 1.0/479001600 + r*(1.0/6227020800)
	p03 := p01 + r2*p23
	p47 := p45 + r2*p67
	p811 := p89 + r2*p1011
	p := p03 + r4*p47 + r8*(p811+r4*p1213)
	return math.Float64frombits(math.Float64bits(p) + uint64(int64(k))<<52)
}
