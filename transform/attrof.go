package transform

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// ColumnAttr converts one value of source column col (an index into the
// source row), in PostgreSQL's text form, to the attribute an item stores
// for it under the plan's conversions — for callers that hold a column's
// text outside a row, such as a dead-letter file's row.
func (tp *TablePlan) ColumnAttr(col int, text string) (types.AttributeValue, error) {
	c := tp.all[col]
	return c.attr(text)
}
