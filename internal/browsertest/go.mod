module github.com/ones-now/onesoidc/internal/browsertest

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.1
	github.com/ones-now/onesoidc v0.0.0
	github.com/ones-now/onesoidc/examples/webserver v0.0.0
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/skip2/go-qrcode v0.0.0-20200617195104-da1b6568686e // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace (
	github.com/ones-now/onesoidc => ../../
	github.com/ones-now/onesoidc/examples/webserver => ../../examples/webserver
	github.com/ones-now/onesoidc/redisstore => ../../redisstore
)
