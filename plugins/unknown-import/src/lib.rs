//! `unknown-import`: implements world `job` but also imports an interface
//! the host does not provide. The host must refuse it at load time, naming
//! the import, rather than fail on the first run.

mod vault {
    wit_bindgen::generate!({
        inline: "
            package acme:secrets;
            interface vault { fetch: func(name: string) -> string; }
            world needs-vault { import vault; }
        ",
    });
}

use wasmcron_guest::{Context, JobError, job};

#[job]
fn run(_ctx: Context) -> Result<String, JobError> {
    Ok(vault::acme::secrets::vault::fetch("db-password"))
}
