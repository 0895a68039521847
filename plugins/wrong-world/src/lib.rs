//! `wrong-world`: a valid component that does not implement world `job`. The
//! host must refuse it with an error naming the missing export.

wit_bindgen::generate!({
    inline: "
        package test:other;
        interface greeter { greet: func(name: string) -> string; }
        world other { export greeter; }
    ",
});

struct Other;

impl exports::test::other::greeter::Guest for Other {
    fn greet(name: String) -> String {
        format!("hi {name}")
    }
}

export!(Other);
