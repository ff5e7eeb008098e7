package jose

import "testing"

// TestCheckMembers: duplicates (also under case folding) and case variants of the named fields
// are refused; other members, nesting and exact names pass.
func TestCheckMembers(t *testing.T) {
	fields := []string{"active", "exp", "username"}
	for doc, ok := range map[string]bool{
		`{"active":true,"exp":1,"other":{"Active":[1,{"x":null}]}}`: true,
		` {"username":"a","userNameX":"b"} `:                        true,
		`{"active":false,"active":true}`:                            false,
		`{"active":false,"Active":true}`:                            false,
		`{"ACTIVE":true}`:                                           false,
		`{"userName":"admin"}`:                                      false,
		`{"a":1,"A":2}`:                                             false,
		`{"exp":1e400}`:                                             false,
		`{"active":true} x`:                                         false,
		`[{"active":true}]`:                                         false,
		"\xef\xbb\xbf{}":                                            false,
		"{\"a\":\"\xff\"}":                                          false,
	} {
		if err := CheckMembers(doc, fields...); (err == nil) != ok {
			t.Errorf("CheckMembers(%q) = %v, want ok %v", doc, err, ok)
		}
	}
}
