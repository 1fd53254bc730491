package verify

import (
	"context"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// ExpectedFunc receives one source row with the item the mapping makes of it
// (its _version is the zero position and should not be compared).
type ExpectedFunc func(tp *transform.TablePlan, keyID string, row extract.Row, item transform.Item) error

// SourceItems reads every row of the plan's tables inside one fresh snapshot and
// passes each, with its expected item, to fn. Rows the mapping cannot convert
// are passed with a nil item and reported by the returned error only if fn
// returns one.
func SourceItems(ctx context.Context, url string, plan *transform.Plan, fn ExpectedFunc) error {
	conn, err := extract.OpenSnapshotConn(ctx, url, "")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, tp := range plan.Tables {
		_, err := conn.ReadChunk(ctx, tp.Source, extract.Chunk{}, func(row extract.Row) error {
			item, id, err := tp.Item(row, extract.Position{})
			if err != nil {
				return fn(tp, "", row, nil)
			}
			return fn(tp, id, row, item)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
