package onesoidc_test

import (
	"fmt"

	"github.com/ones-now/onesoidc"
)

// Which way a token is validated: JWTs locally, anything else by introspection.
func ExampleIsJWT() {
	fmt.Println(onesoidc.IsJWT("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"))
	fmt.Println(onesoidc.IsJWT("NzQ2ZjY1NmU2ZjcwNjE3MTc1NjU0ZjQ0NzQ2ZjZiNjU2ZQ"))
	// Output:
	// true
	// false
}
