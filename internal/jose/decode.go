package jose

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// Decoder decodes verified payloads into Go values with the result of encoding/json
// (RFC 7519 §7.2 step 10), reading the payload once with the strict reader: a struct whose
// exported fields are strings, booleans, numbers and []string is filled directly, its other
// fields each by encoding/json from the member's text, and anything else (maps, a struct with
// embedded fields, ",string" options or field names equal under case folding, a value that
// does not fit its field) by encoding/json as a whole, so that results and errors are those of
// json.Unmarshal. Members match fields as encoding/json matches them: by name without regard to
// case (strings.EqualFold); ParseClaims refused payloads where two members could match one field.
// A Decoder is safe for concurrent use; it remembers the fields of each struct type it saw.
type Decoder struct {
	plans sync.Map // reflect.Type -> *structPlan, nil for types left to encoding/json
}

// structPlan is how the fields of a struct type are filled.
type structPlan struct {
	fields []fieldPlan
	ascii  bool // every field name is ASCII
}

type fieldPlan struct {
	name  string
	index int
	kind  fieldKind
}

type fieldKind uint8

const (
	fieldRaw     fieldKind = iota // by encoding/json from the member's text
	fieldString                   // string kinds
	fieldBool                     // bool kinds
	fieldInt                      // int kinds
	fieldUint                     // uint kinds
	fieldFloat                    // float kinds
	fieldStrings                  // exactly []string
)

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	stringSliceType     = reflect.TypeFor[[]string]()
)

// Decode decodes payload, a JSON object that ParseClaims accepted, into v as
// json.Unmarshal([]byte(payload), v) does.
func (d *Decoder) Decode(payload string, v any) error {
	rv := reflect.ValueOf(v)
	if d == nil || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return UnmarshalClaims(payload, v)
	}
	plan := d.plan(rv.Type())
	if plan == nil || !plan.decode(payload, rv.Elem()) {
		return UnmarshalClaims(payload, v)
	}
	return nil
}

// plan returns the plan of *T for ptr = *T, or nil when encoding/json decodes T.
func (d *Decoder) plan(ptr reflect.Type) *structPlan {
	if p, ok := d.plans.Load(ptr); ok {
		return p.(*structPlan)
	}
	p := makePlan(ptr)
	d.plans.Store(ptr, p)
	return p
}

func makePlan(ptr reflect.Type) *structPlan {
	if ptr.Implements(unmarshalerType) || ptr.Implements(textUnmarshalerType) {
		return nil
	}
	t := ptr.Elem()
	p := &structPlan{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil // embedded fields: encoding/json's promotion rules
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			return nil
		}
		if name == "" {
			name = f.Name
		} else if !plainName(name) {
			return nil // encoding/json would use the Go name for some of these
		}
		for _, o := range p.fields {
			if strings.EqualFold(o.name, name) {
				return nil // which one a member fills is encoding/json's business
			}
		}
		p.fields = append(p.fields, fieldPlan{name: name, index: i, kind: kindOf(f.Type)})
	}
	p.ascii = true
	for _, f := range p.fields {
		p.ascii = p.ascii && isASCII(f.name)
	}
	return p
}

// plainName reports whether a tag name is one that encoding/json certainly takes as it is.
func plainName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}

func kindOf(t reflect.Type) fieldKind {
	pt := reflect.PointerTo(t)
	if t.Implements(unmarshalerType) || pt.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType) {
		return fieldRaw
	}
	switch t.Kind() {
	case reflect.String:
		return fieldString
	case reflect.Bool:
		return fieldBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fieldInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fieldUint
	case reflect.Float32, reflect.Float64:
		return fieldFloat
	case reflect.Slice:
		if t == stringSliceType {
			return fieldStrings
		}
	}
	return fieldRaw
}

// find returns the field a member named name fills, or nil: the one whose name equals name
// under Unicode case folding (strings.EqualFold), as encoding/json matches. No two fields of a
// plan are equal under folding, so the first match is the only one (an exact match included).
// Between ASCII names folding is ASCII case-insensitivity, which needs equal lengths: the
// common case takes that path; a non-ASCII name on either side takes strings.EqualFold.
func (p *structPlan) find(name string) *fieldPlan {
	if p.ascii && isASCII(name) {
		for i := range p.fields {
			if f := &p.fields[i]; len(f.name) == len(name) && equalFoldASCII(f.name, name) {
				return f
			}
		}
		return nil
	}
	for i := range p.fields {
		if p.fields[i].name == name {
			return &p.fields[i]
		}
	}
	for i := range p.fields {
		f := &p.fields[i]
		if len(f.name) > 0 && len(name) > 0 && f.name[0] < 0x80 && name[0] < 0x80 && lowerASCII(f.name[0]) != lowerASCII(name[0]) {
			continue
		}
		if strings.EqualFold(f.name, name) {
			return f
		}
	}
	return nil
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// equalFoldASCII reports whether a and b, ASCII of the same length, are equal ignoring case.
func equalFoldASCII(a, b string) bool {
	for i := range len(a) {
		if a[i] != b[i] && lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// decode fills the fields of v from payload; false when a value does not fit its field, which
// encoding/json then reports.
func (p *structPlan) decode(payload string, v reflect.Value) bool {
	r := jsonReader{s: payload}
	if !r.begin() {
		return false
	}
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		r.ws()
		start := r.i
		val := r.value(0)
		if r.bad {
			return false
		}
		f := p.find(name)
		if f == nil {
			continue
		}
		if !setField(v.Field(f.index), f.kind, val, payload[start:r.i]) {
			return false
		}
	}
	return r.end()
}

// setField sets fv from val (whose JSON text is text) as encoding/json would, or reports false.
func setField(fv reflect.Value, kind fieldKind, val jsonValue, text string) bool {
	if val.kind == jsonNull && kind != fieldRaw {
		if kind == fieldStrings {
			fv.SetZero()
		}
		return true // encoding/json leaves other kinds alone on null
	}
	switch kind {
	case fieldString:
		if val.kind != jsonString {
			return false
		}
		fv.SetString(val.text())
	case fieldBool:
		if val.kind != jsonBool {
			return false
		}
		fv.SetBool(val.raw == "true")
	case fieldInt:
		if val.kind != jsonNumber {
			return false
		}
		n, err := strconv.ParseInt(val.raw, 10, 64)
		if err != nil || fv.OverflowInt(n) {
			return false
		}
		fv.SetInt(n)
	case fieldUint:
		if val.kind != jsonNumber {
			return false
		}
		n, err := strconv.ParseUint(val.raw, 10, 64)
		if err != nil || fv.OverflowUint(n) {
			return false
		}
		fv.SetUint(n)
	case fieldFloat:
		if val.kind != jsonNumber {
			return false
		}
		f, err := strconv.ParseFloat(val.raw, fv.Type().Bits())
		if err != nil || fv.OverflowFloat(f) {
			return false
		}
		fv.SetFloat(f)
	case fieldStrings:
		s, ok := stringArray(val)
		if !ok {
			return false
		}
		*fv.Addr().Interface().(*[]string) = s // exactly []string (kindOf); no boxing of s
	default:
		return json.Unmarshal([]byte(text), fv.Addr().Interface()) == nil
	}
	return true
}
