package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// DefinitionID identifies what turns a table's changes into items and
// records: the mapping file's text and the table's definition (columns, types,
// key, replica identity; the row estimate is left out, it changes on its
// own). Records carry it ("source":{…,"def":"…"}), so an applier that runs
// without the source (the Lambda function) applies each record with the plan
// it was made with, whatever plan it was deployed with: sync stores every
// definition it publishes under its ID (pipeline.StoreDefinitions).
//
// 16 hex digits (64 bits of SHA-256): the IDs compared are one table's few
// definitions, so a collision is out of reach.
func DefinitionID(mapping []byte, t *extract.Table) string {
	c := *t
	c.EstimatedRows = 0
	b, err := json.Marshal(&c)
	if err != nil {
		panic("transform: a table definition does not marshal: " + err.Error()) // plain structs: cannot happen
	}
	h := sha256.New()
	h.Write(mapping)
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// definitionOf is the DefinitionID of t under m, "" when m was not parsed
// from a file's text (a mapping built in code has no definitions to store).
func definitionOf(m *mappings.Mapping, t *extract.Table) string {
	if m == nil || len(m.Text) == 0 {
		return ""
	}
	return DefinitionID(m.Text, t)
}

// MappingID identifies a mapping file's text (its SHA-256, in hex).
func MappingID(mapping []byte) string {
	s := sha256.Sum256(mapping)
	return hex.EncodeToString(s[:])
}
