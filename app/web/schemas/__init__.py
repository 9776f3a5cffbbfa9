"""The API's request and response bodies, one module per API module; the OpenAPI document
is generated from them."""
