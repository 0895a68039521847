//! Places the address-taken functions at table index 50,000, so the
//! module's table has a minimum of more than 50,000 elements: larger than
//! wasmtime's pooling default (20,000), within wasmcron's documented limit
//! (100,000).

fn main() {
    println!("cargo::rustc-link-arg=--table-base=50000");
}
