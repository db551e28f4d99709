import Demangle
import Foundation
import Testing
import TestSupport

/// Rust v0 names (`_R…`): every v0 symbol of a library built here by rustc with
/// `-C symbol-mangling-version=v0` (generics, const generics, closures, trait impls, `dyn` with
/// associated types, `for<'a>` function pointers, raw pointers, arrays, tuples, a Unicode
/// identifier, std's monomorphized code) against binutils' `c++filt`, whose crate hashes
/// (`core[1a2b…]`) are dropped to give rustc-demangle's alternate form that symbolic and
/// Mozilla's dump_syms print; plus the format's own examples and hostile names.
@Suite struct RustV0DemanglerTests {
    static let source = #"""
use std::collections::HashMap;
use std::fmt::Debug;
pub trait Shape { fn area(&self) -> f64; fn name(&self) -> String { String::from("shape") } }
pub struct Circle<T> { pub r: T }
impl Shape for Circle<f64> { fn area(&self) -> f64 { 3.14 * self.r * self.r } }
impl<T: Debug> Circle<T> { #[inline(never)] pub fn show(&self) -> String { format!("{:?}", self.r) } }
pub struct Grid<const N: usize> { pub cells: [u8; N] }
impl<const N: usize> Grid<N> { #[inline(never)] pub fn sum(&self) -> usize { self.cells.iter().map(|&c| c as usize).sum() } }
#[inline(never)] pub fn apply<F: Fn(i32) -> i32>(f: F, x: i32) -> i32 { f(x) }
#[inline(never)] pub fn dynamic(s: &dyn Shape) -> f64 { s.area() }
#[inline(never)] pub fn boxed(v: Vec<Box<dyn Fn(&str) -> usize + Send>>) -> usize { v.iter().map(|f| f("abc")).sum() }
#[inline(never)] pub fn tuple(t: (i8, u16, &'static str)) -> usize { t.2.len() + t.0 as usize }
#[inline(never)] pub fn fnptr(f: for<'a> fn(&'a str) -> &'a str) -> usize { f("x").len() }
#[inline(never)] pub fn raw(p: *const u8, q: *mut i64) -> bool { p.is_null() || q.is_null() }
#[inline(never)] pub fn slices(a: &[u32], b: &mut [char; 3]) -> u32 { b[0] = 'x'; a.iter().sum() }
#[inline(never)] pub fn unsafe_extern(f: unsafe extern "C" fn(i32) -> i32) -> i32 { unsafe { f(1) } }
#[inline(never)] pub fn ünïcödé_fn(x: i128, y: u128) -> i128 { x + y as i128 }
#[inline(never)] pub fn map_it(m: &HashMap<String, Vec<Option<(u64, bool)>>>) -> usize { m.len() }
#[inline(never)] pub fn never() -> ! { loop {} }
#[inline(never)] pub fn iterate(it: &mut dyn Iterator<Item = (u8, &str)>) -> usize { it.count() }
#[inline(never)] pub fn nested() -> impl Fn(u8) -> Box<dyn Fn(u8) -> u8> { |a| Box::new(move |b| a + b) }
pub mod geometry { pub mod inner { #[inline(never)] pub fn deep<T: Clone + Default>(v: &[T]) -> Vec<T> { let mut o = v.to_vec(); o.push(T::default()); o } } }
pub struct Wrapper<'a, T: ?Sized>(pub &'a T);
impl<'a, T: ?Sized + Debug> Debug for Wrapper<'a, T> { fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { write!(f, "W({:?})", self.0) } }
#[inline(never)] pub fn generic_const<const B: bool, const C: char, const I: i32>() -> i32 { if B { I } else { C as i32 } }
#[no_mangle] pub extern "C" fn postmortem_entry() -> usize { use_all() }
#[inline(never)] pub fn use_all() -> usize {
    let c = Circle { r: 2.0f64 };
    let g = Grid::<4> { cells: [1, 2, 3, 4] };
    let s: Vec<Box<dyn Fn(&str) -> usize + Send>> = vec![Box::new(|s: &str| s.len()), Box::new(move |s: &str| s.len() * 2)];
    let mut chars = ['a', 'b', 'c'];
    let mut m = HashMap::new();
    m.insert(String::from("k"), vec![Some((1u64, true)), None]);
    let mut total = apply(|x| x * 2, 3) as usize + dynamic(&c) as usize + boxed(s) + tuple((1, 2, "abc")) + fnptr(|s| s);
    total += g.sum() + slices(&[1, 2, 3], &mut chars) as usize + map_it(&m) + c.show().len() + Circle { r: 5u8 }.show().len();
    total += format!("{:?}", Wrapper(&[1u8, 2][..])).len() + format!("{:?}", Wrapper("str")).len();
    total += generic_const::<true, 'z', -7>() as usize + generic_const::<false, '\n', 3>() as usize;
    total += ünïcödé_fn(-5, 9) as usize + raw(std::ptr::null(), std::ptr::null_mut()) as usize;
    let it: Vec<u32> = (0..10u32).filter(|x| x % 3 == 0).map(|x| x * x).collect();
    let mut pairs = vec![(1u8, "a"), (2, "b")].into_iter();
    total += iterate(&mut pairs) + nested()(3)(4) as usize + geometry::inner::deep(&[1i16, 2]).len() + geometry::inner::deep(&["x".to_string()]).len();
    total + it.len() + c.name().len()
}

"""#

    @Test func everySymbolOfARustLibraryReadsAsCxxfiltSaysIt() throws {
        let rustc = try #require(findExecutable("rustc"), "rustc is required to build the v0-mangled library")
        let cxxfilt = try #require(findExecutable("c++filt"), "binutils' c++filt is required")
        let dir = TestData.temporaryDirectory("rust-v0")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.source.utf8).write(to: URL(fileURLWithPath: dir + "/lib.rs"))
        let library = dir + "/librv0.so"
        let (status, _, err) = try runProcess(rustc, ["--crate-type=cdylib", "-C", "symbol-mangling-version=v0", "-o", library, dir + "/lib.rs"],
                                              timeout: .seconds(300))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(2000))")
        guard status == 0 else { return }
        let (nmStatus, nmOut, _) = try runProcess("/usr/bin/env", ["nm", library])
        #expect(nmStatus == 0)
        let names = Set(String(decoding: nmOut, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
            guard let name = line.split(separator: " ").last, name.hasPrefix("_R") else { return nil }
            return String(name)
        }).sorted()
        #expect(names.count > 300, "v0 symbols: \(names.count)")
        let (filtStatus, filtOut, _) = try runProcess(cxxfilt, [], stdin: Data(names.joined(separator: "\n").utf8))
        #expect(filtStatus == 0)
        let theirs = String(decoding: filtOut, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).prefix(names.count)
            .map { Self.withoutCrateHashes(String($0)) }
        // Two explained differences, where c++filt parts from rustc-demangle's alternate form (the
        // format's own examples below hold the latter): c++filt keeps a constant's type
        // (`<10: usize>`) and drops a trailing `.0`-style suffix, which rustc-demangle prints.
        var same = 0, explained = 0, differences: [String] = []
        for (name, expected) in zip(names, theirs) {
            let ours = Demangler.demangle(name)
            if ours == expected {
                same += 1
            } else if ours == expected.replacing(#/: (?:u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize|bool|char)(?=[,>\]])/#, with: "")
                        || ours.replacing(#/(?:\.[0-9]+)+$/#, with: "") == expected {
                explained += 1
            } else {
                differences.append("\(name)\n  ours:     \(ours)\n  c++filt:  \(expected)")
            }
        }
        #expect(differences.isEmpty, "\(same)/\(names.count) equal, \(explained) explained; differences:\n\(differences.prefix(10).joined(separator: "\n"))")
        #expect(explained * 10 < names.count, "explained differences stay rare: \(explained)")
        print("RustV0DemanglerTests: \(same) of \(names.count) v0 names exactly as c++filt, \(explained) differing as explained")
        // The Unicode identifier came through Punycode.
        #expect(names.map { Demangler.demangle($0) }.contains { $0.hasSuffix("::ünïcödé_fn") })
    }

    /// `core[1a2b3c4d]` → `core`: the alternate form leaves crate disambiguators out.
    static func withoutCrateHashes(_ s: String) -> String {
        s.replacing(#/\[[0-9a-f]+\]/#, with: "")
    }

    @Test func theFormatsOwnExamples() {
        let cases: [(String, String)] = [
            ("_RNvC6_123foo3bar", "123foo::bar"),
            ("_RC4f128", "f128"),
            ("_RNqCs4fqI2P2rA04_11utf8_identsu30____7hkackfecea1cbdathfdh9hlq6y", "utf8_idents::საჭმელად_გემრიელი_სადილი"),
            ("_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_", "cc::spawn::{closure#0}::{closure#0}"),
            ("_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_",
             "<core::slice::Iter<u8> as core::iter::iterator::Iterator>::rposition::<core::slice::memchr::memrchr::{closure#1}>::{closure#0}"),
            ("_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_ECs1iopQbuBiw2_3std",
             "alloc::alloc::box_free::<dyn alloc::boxed::FnBox<(), Output = ()>>"),
            ("_RMC0INtC8arrayvec8ArrayVechKj7b_E", "<arrayvec::ArrayVec<u8, 123>>"),
            ("_RIC0Kp_E".replacingOccurrences(of: "p_", with: "p"), "::<_>"),
            ("_RIC0Khb_E", "::<11>"),
            ("_RIC0Koff00ff00ff00ff00ff_E", "::<0xff00ff00ff00ff00ff>"),
            ("_RIC0Kanb_E", "::<-11>"),
            ("_RIC0Kb1_E", "::<true>"),
            ("_RIC0Kc76_E", "::<'v'>"),
            ("_RIC0Kca_E", "::<'\\n'>"),
            ("_RIC0Kc2202_E", "::<'∂'>"),
            ("_RIC0Ke616263_E", "::<{*\"abc\"}>"),
            ("_RIC0KRe616263_E", "::<\"abc\">"),
            ("_RIC0KRh7b_E", "::<{&123}>"),
            ("_RIC0KQAEE", "::<{&mut []}>"),
            ("_RIC0KTh1_b0_EE", "::<{(1, false)}>"),
            ("_RIC0KVNvINtNtC4core6option6OptionjE4SomeTj0_EE", "::<{core::option::Option::<usize>::Some(0)}>"),
            ("_RIC0KVNtC3foo3BarS1sRe616263_2chc78_5sliceRAh1_h2_h3_EEE", "::<{foo::Bar { s: \"abc\", ch: 'x', slice: &[1, 2, 3] }}>"),
            ("_RC3foo.llvm.9D1C9369", "foo"),
            ("_RNvC9backtrace3foo.llvm.A5310EB9", "backtrace::foo"),
            ("_RNvNtNtNtNtCs92dm3009vxr_4rand4rngs7adapter9reseeding4fork23FORK_HANDLER_REGISTERED.0.0",
             "rand::rngs::adapter::reseeding::fork::FORK_HANDLER_REGISTERED.0.0"),
            ("__RNvC9backtrace3foo", "backtrace::foo"),
        ]
        for (mangled, expected) in cases {
            #expect(Demangler.demangle(mangled) == expected, "\(mangled)")
        }
        // 2^6 copies through back-references: printed in full.
        let explosion = Demangler.demangle("_RMC0TTTTTTpB8_EB7_EB6_EB5_EB4_EB3_E")
        #expect(explosion.hasPrefix("<((((((_, _), (_, _))") && explosion.filter { $0 == "_" }.count == 64)
    }

    @Test func hostileNamesStayMangled() {
        // Not v0, or not completely: unchanged.
        for name in ["_R", "_Rx", "_RNvC", "_RC3fo", "_RB_", "_RNvC3fooB_3bar", "_RIC0Kc110000_E", "_RC3foo trailing", "_RC3foo.bad suffix",
                     "_RIC0Kb2_E", "_RIC0Ke6_E", "_RIC0KeffE_E", "_RMC0WmRm1_m9_"] {
            #expect(Demangler.demangle(name) == name, "\(name)")
        }
        // Deep nesting without back-references, and a recursion through them: no trap, bounded.
        let deep = "_RIC0" + String(repeating: "R", count: 100_000) + "pE"
        #expect(Demangler.demangle(deep) == deep)
        let huge = "_RMC0" + String(repeating: "T", count: 40) + "p" + (3...42).reversed().map { "B\($0)_E" }.joined()
        #expect(Demangler.demangle(huge).utf8.count <= 1 << 16 || Demangler.demangle(huge) == huge)
        // Random bytes after the prefix.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...60, using: &generator)
            let name = "_R" + String(decoding: (0..<length).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self)
            _ = Demangler.demangle(name)
        }
    }
}
