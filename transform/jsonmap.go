package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// jsonMaxDepth is the deepest nesting of objects and arrays a `map` column
// may hold. DynamoDB nests documents at most 32 levels, counting the item
// itself: an attribute holds at most 31 maps or lists inside one another
// (measured against DynamoDB: 31 nested maps round a scalar are written, 32
// are refused with "Nesting Levels have exceeded supported limits"). dynalite
// does not check it, so ferry does, before the write.
const jsonMaxDepth = 31

// jsonAttr converts a json/jsonb value (PostgreSQL's text of it) to a
// DynamoDB document attribute, the `map` conversion: an object is M (keys as
// written), an array L, a string S, a number N with the digits as written,
// true/false BOOL, null NULL. Any JSON value works at the top level (a
// top-level array is L, a string S, …). Refused, with the JSON path of the
// value: a number beyond N (more than 38 significant digits, magnitude
// outside 1E-130 … 9.99E+125); a key written twice in one object (json keeps
// both, a map holds one); nesting deeper than DynamoDB's limit; a string
// with an unpaired \uD800–\uDFFF escape (no UTF-8 form: it would be changed).
func jsonAttr(text string) (types.AttributeValue, error) {
	if !utf8.ValidString(text) {
		return nil, errors.New("json value is not valid UTF-8")
	}
	w := jsonWalker{text: text, dec: json.NewDecoder(strings.NewReader(text))}
	w.dec.UseNumber()
	v, err := w.value(0, "$")
	if err != nil {
		return nil, err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return nil, errors.New("json value: unexpected data after the top-level value")
	}
	return v, nil
}

type jsonWalker struct {
	text string
	dec  *json.Decoder
}

// token reads the next token; for a string it also checks that decoding did
// not replace an unpaired surrogate escape with U+FFFD.
func (w *jsonWalker) token(path string) (json.Token, error) {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("json value at %s: %v", path, err)
	}
	if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
		raw := w.text[start:w.dec.InputOffset()]
		if i := strings.IndexByte(raw, '"'); i >= 0 && loneSurrogate(raw[i:]) {
			return nil, fmt.Errorf("json value at %s: string %s holds an unpaired UTF-16 surrogate escape, which has no UTF-8 form (DynamoDB would get U+FFFD instead); keep the column as text (auto)", path, raw[i:])
		}
	}
	return tok, nil
}

func (w *jsonWalker) value(depth int, path string) (types.AttributeValue, error) {
	tok, err := w.token(path)
	if err != nil {
		return nil, err
	}
	return w.from(tok, depth, path)
}

func (w *jsonWalker) from(tok json.Token, depth int, path string) (types.AttributeValue, error) {
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > jsonMaxDepth {
			return nil, fmt.Errorf("json value at %s: nested deeper than DynamoDB's %d levels of maps and lists; keep the column as text (auto)", path, jsonMaxDepth)
		}
		if t == '[' {
			l := []types.AttributeValue{}
			for i := 0; ; i++ {
				p := path + "[" + strconv.Itoa(i) + "]"
				tok, err := w.token(p)
				if err != nil {
					return nil, err
				}
				if tok == json.Delim(']') {
					return &types.AttributeValueMemberL{Value: l}, nil
				}
				v, err := w.from(tok, depth+1, p)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
		}
		m := map[string]types.AttributeValue{}
		for {
			tok, err := w.token(path)
			if err != nil {
				return nil, err
			}
			if tok == json.Delim('}') {
				return &types.AttributeValueMemberM{Value: m}, nil
			}
			k := tok.(string) // the decoder only gives a string or '}' here
			p := jsonPath(path, k)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("json value at %s: key %s is written twice in one object; a map holds one value per key (jsonb keeps the last, json both): keep the column as text (auto)", path, appendJSONString(nil, k))
			}
			v, err := w.value(depth+1, p)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case string:
		return &types.AttributeValueMemberS{Value: t}, nil
	case json.Number:
		s := string(t)
		if !numberFitsN(s) {
			return nil, fmt.Errorf("json value at %s: number %s is beyond DynamoDB's number range (38 digits, magnitude 1E-130 to 9.99E+125); keep the column as text (auto) to keep it", path, s)
		}
		return &types.AttributeValueMemberN{Value: s}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: t}, nil
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	}
	return nil, fmt.Errorf("json value at %s: unexpected token %v", path, tok)
}

// jsonPath extends a JSONPath-like path with an object key: .key for a plain
// name, ["key"] (JSON-quoted) otherwise.
func jsonPath(path, key string) string {
	plain := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + string(appendJSONString(nil, key)) + "]"
}

// loneSurrogate reports whether a JSON string literal (with its quotes) holds
// a \uD800–\uDFFF escape that is not part of a high-low pair.
func loneSurrogate(lit string) bool {
	hex4 := func(i int) (int, bool) {
		if i+6 > len(lit) || lit[i] != '\\' || lit[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(lit[i+2:i+6], 16, 16)
		return int(v), err == nil
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		v, ok := hex4(i)
		if !ok {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		switch {
		case v >= 0xD800 && v < 0xDC00:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}
