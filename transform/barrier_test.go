package transform

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/extract"
)

func TestBarrierRecord(t *testing.T) {
	now := time.Date(2026, 12, 2, 22, 50, 0, 0, time.UTC)
	for _, id := range []string{"v-1764715800-0001", "", "ü \"quoted\" \x00 id"} {
		data := BarrierRecord(id, extract.LSN(0x16B374D848), now)
		env, err := DecodeRecord(data)
		if err != nil {
			t.Fatalf("DecodeRecord(%s): %v", data, err)
		}
		got, ok := env.Barrier()
		if !ok || got != id {
			t.Errorf("Barrier() = %q, %v; want %q, true", got, ok, id)
		}
		if env.Pos.LSN != extract.LSN(0x16B374D848) || env.Op != OpMessage {
			t.Errorf("envelope = %+v", env)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || m["before"] != nil || m["after"] != nil {
			t.Errorf("a barrier carries no row images: %s", data)
		}
	}
}

func TestDecodeMessageRecords(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		barrier bool
		wantErr bool
	}{
		{"another prefix", `{"op":"m","source":{"lsn":"0/10"},"message":{"prefix":"app.audit","content":"aGk="}}`, false, false},
		{"a row change", `{"op":"c","source":{"lsn":"0/10"},"after":{"a":1}}`, false, false},
		{"content not base64", `{"op":"m","source":{"lsn":"0/10"},"message":{"prefix":"ferry.barrier","content":"%%"}}`, false, true},
		{"unknown op", `{"op":"x","source":{"lsn":"0/10"}}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := DecodeRecord([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if _, ok := env.Barrier(); ok != tt.barrier {
				t.Errorf("Barrier() ok = %v, want %v", ok, tt.barrier)
			}
		})
	}
}

// FuzzDecodeRecord: any bytes decode or fail with an error, never a panic;
// a barrier's id survives the round trip.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"op":"u","source":{"lsn":"0/16","seq":2},"before":null,"after":{"x":"1"}}`), "id")
	f.Add(BarrierRecord("seed", 7, time.Unix(0, 0)), "b")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		if env, err := DecodeRecord(data); err == nil {
			_, _ = env.Barrier()
		}
		env, err := DecodeRecord(BarrierRecord(id, 42, time.Unix(1, 0)))
		if err != nil {
			t.Fatalf("barrier %q: %v", id, err)
		}
		// JSON replaces invalid UTF-8 (verify's ids are ASCII).
		if got, ok := env.Barrier(); !ok || (got != id && utf8.ValidString(id)) {
			t.Fatalf("barrier %q came back as %q, %v", id, got, ok)
		}
	})
}
