//! Components that are valid but expensive to compile, generated.
//!
//! The shape is the one hostile plugins use: functions whose bodies keep
//! thousands of values alive at once (each pushed on the operand stack and
//! only summed at the end), so the register allocator spills and juggles
//! far more than the file's size suggests. The component wraps one core
//! module with no imports and no exports: it compiles (slowly), then is
//! refused for not implementing world `job`, which is fine for tests about
//! what happens *while* it compiles.

use wasm_encoder::{
    CodeSection, Component, Function, FunctionSection, InstanceSection, Module, ModuleSection,
    TypeSection, ValType,
};

/// A component with `functions` functions of `live` simultaneously live
/// values each. `salt` changes the constants, so each salt is a distinct
/// file (hash) with the same compile cost.
pub fn slow_component(functions: u32, live: u32, salt: u32) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    for f in 0..functions {
        funcs.function(0);
        let mut body = Function::new([(4, ValType::I32)]);
        let mut sink = body.instructions();
        for i in 0..live {
            // Each value depends on the parameter, so none folds away.
            let k = i32::try_from(i ^ salt ^ (f << 16)).unwrap_or(i32::MAX);
            sink.local_get(0).i32_const(k).i32_mul();
        }
        for _ in 1..live {
            sink.i32_add();
        }
        sink.end();
        code.function(&body);
    }
    let mut module = Module::new();
    module.section(&types).section(&funcs).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    component.section(&instances);
    component.finish()
}
