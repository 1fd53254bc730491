package extract

// Kinds of types whose text form needs more than KindOther's "keep the text"
// (see docs/types.md for every type's form).
const (
	// KindMoney is money. Its text form depends on lc_monetary, which ferry pins to
	// C for every connection (replication included): "-$1,234.56". transform
	// carries it as the exact decimal "-1234.56".
	KindMoney Kind = "money"
	// KindBox is box: kept as its text form like KindOther, but its arrays are
	// delimited by ';' ("{(1,1),(0,0);(2,2),(1,1)}"), not ','.
	KindBox Kind = "box"
)

// ArrayDelimiter is the delimiter of the text form of arrays of kind (the
// element type's typdelim): ';' for box, ',' for every other built-in type.
func ArrayDelimiter(kind Kind) byte {
	if kind == KindBox {
		return ';'
	}
	return ','
}
