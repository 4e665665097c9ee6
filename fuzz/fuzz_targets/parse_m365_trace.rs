//! Arbitrary bytes as Microsoft 365 message trace records (JSON), forced with `--format`
//! (`Format::M365Trace`): no panic, every row fits its table, every line
//! accounted for once. See `mcpf_fuzz::check_format`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpf_formats::Format;

fuzz_target!(|data: &[u8]| {
    mcpf_fuzz::check_format(Format::M365Trace, data);
});
