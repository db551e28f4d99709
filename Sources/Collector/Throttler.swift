import Foundation
import JSONSupport

/// What the throttler decides for a crash (Socorro's results; the raw values are the codes).
public enum ThrottleResult: Int, Sendable {
    case accept = 0, deferred = 1, reject = 2, fakeAccept = 3, `continue` = 4

    init?(name: String) {
        switch name.lowercased() {
        case "accept": self = .accept
        case "defer": self = .deferred
        case "reject": self = .reject
        case "fakeaccept", "fake_accept", "fake-accept": self = .fakeAccept
        case "continue": self = .continue
        default: return nil
        }
    }
}

/// A condition over the annotations of a crash.
indirect enum ThrottleCondition: Sendable {
    case always
    /// The annotation is present.
    case exists(String)
    case equals(String, String)
    case oneOf(String, Set<String>)
    case prefix(String, String)
    /// Anchored at the start, like Python's `re.match`.
    case matches(String, NSRegularExpressionBox)
    case not(ThrottleCondition)
    case all([ThrottleCondition])
    case any([ThrottleCondition])

    func holds(_ annotations: [String: String]) -> Bool {
        switch self {
        case .always: return true
        case .exists(let key): return annotations[key] != nil
        case .equals(let key, let value): return annotations[key] == value
        case .oneOf(let key, let values): return annotations[key].map(values.contains) ?? false
        case .prefix(let key, let value): return annotations[key]?.hasPrefix(value) ?? false
        case .matches(let key, let regex): return annotations[key].map(regex.matchesAtStart) ?? false
        case .not(let c): return !c.holds(annotations)
        case .all(let cs): return cs.allSatisfy { $0.holds(annotations) }
        case .any(let cs): return cs.contains { $0.holds(annotations) }
        }
    }
}

public final class NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ pattern: String) throws { regex = try NSRegularExpression(pattern: pattern) }
    func matchesAtStart(_ s: String) -> Bool {
        regex.firstMatch(in: s, options: [.anchored], range: NSRange(s.startIndex..., in: s)) != nil
    }
}

/// A named rule: when its condition holds, its result (or a sampled one) applies.
struct ThrottleRule: Sendable {
    enum Outcome: Sendable {
        case fixed(ThrottleResult)
        /// `percent`% of the time `then`, otherwise `otherwise`.
        case sampled(percent: Double, then: ThrottleResult, otherwise: ThrottleResult)
    }

    let name: String
    let condition: ThrottleCondition
    let outcome: Outcome
}

public struct ThrottleRuleError: Error, CustomStringConvertible {
    public let description: String
}

/// Socorro's throttler with its rules as data: rules are tried in order and the first whose
/// condition holds and whose (possibly sampled) result is not CONTINUE decides; no match is
/// REJECT with the rule name `NO_MATCH`.
///
/// Rules file (JSON array):
/// ```json
/// [{"name": "has_hangid_and_browser", "when": {"all": [{"key": "HangID", "exists": true},
///                                                      {"key": "ProcessType", "in": ["browser"], "default": "browser"}]},
///   "result": "reject"},
///  {"name": "is_nightly", "when": {"key": "ReleaseChannel", "prefix": "nightly"}, "result": "accept"},
///  {"name": "firefox_release", "when": {"key": "ProductName", "equals": "Firefox"},
///   "result": {"percent": 10, "then": "accept", "else": "reject"}},
///  {"name": "accept_everything", "result": "accept"}]
/// ```
public struct Throttler: Sendable {
    let rules: [ThrottleRule]
    /// A number in [0, 100); injected so tests can fix the sampling.
    let roll: @Sendable () -> Double

    init(rules: [ThrottleRule], roll: @escaping @Sendable () -> Double = { Double.random(in: 0..<100) }) {
        self.rules = rules
        self.roll = roll
    }

    /// The generic default: with a product list, unknown products are rejected
    /// (`unsupported_product`); everything else is accepted (`accept_everything`).
    public static func standard(products: [String], roll: @escaping @Sendable () -> Double = { Double.random(in: 0..<100) }) -> Throttler {
        var rules: [ThrottleRule] = []
        if !products.isEmpty {
            rules.append(ThrottleRule(name: "unsupported_product", condition: .not(.oneOf("ProductName", Set(products))), outcome: .fixed(.reject)))
        }
        rules.append(ThrottleRule(name: "accept_everything", condition: .always, outcome: .fixed(.accept)))
        return Throttler(rules: rules, roll: roll)
    }

    /// Rules from a JSON document (see the type's documentation).
    public static func load(json: Data, roll: @escaping @Sendable () -> Double = { Double.random(in: 0..<100) }) throws -> Throttler {
        guard case .array(let items)? = JSONValue.parse(json) else { throw ThrottleRuleError(description: "throttle rules: not a JSON array") }
        var rules: [ThrottleRule] = []
        for (n, item) in items.enumerated() {
            func fail(_ why: String) -> ThrottleRuleError { ThrottleRuleError(description: "throttle rule \(n + 1): \(why)") }
            guard case .string(let name)? = item["name"], !name.isEmpty,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw fail("needs a \"name\" of letters, digits and _")
            }
            let condition = try item["when"].map { try Self.condition($0, fail) } ?? .always
            let outcome: ThrottleRule.Outcome
            switch item["result"] {
            case .string(let r)?:
                guard let result = ThrottleResult(name: r) else { throw fail("unknown result \"\(r)\"") }
                outcome = .fixed(result)
            case .object?:
                guard let p = item["result"]?["percent"], let percent = p.number, (0...100).contains(percent),
                      case .string(let t)? = item["result"]?["then"], let then = ThrottleResult(name: t),
                      case .string(let e)? = item["result"]?["else"], let otherwise = ThrottleResult(name: e) else {
                    throw fail("a sampled result needs \"percent\" (0–100), \"then\" and \"else\"")
                }
                outcome = .sampled(percent: percent, then: then, otherwise: otherwise)
            default:
                throw fail("needs a \"result\"")
            }
            rules.append(ThrottleRule(name: name, condition: condition, outcome: outcome))
        }
        return Throttler(rules: rules, roll: roll)
    }

    static func condition(_ v: JSONValue, _ fail: (String) -> ThrottleRuleError) throws -> ThrottleCondition {
        if case .array(let items)? = v["all"] { return .all(try items.map { try condition($0, fail) }) }
        if case .array(let items)? = v["any"] { return .any(try items.map { try condition($0, fail) }) }
        if let inner = v["not"] { return .not(try condition(inner, fail)) }
        guard case .string(let key)? = v["key"] else { throw fail("a condition needs \"key\" (or all/any/not)") }
        var c: ThrottleCondition
        if case .bool(let e)? = v["exists"] { c = e ? .exists(key) : .not(.exists(key)) }
        else if case .string(let s)? = v["equals"] { c = .equals(key, s) }
        else if case .array(let list)? = v["in"] { c = .oneOf(key, Set(list.compactMap { if case .string(let s) = $0 { s } else { nil } })) }
        else if case .array(let list)? = v["not_in"] { c = .not(.oneOf(key, Set(list.compactMap { if case .string(let s) = $0 { s } else { nil } }))) }
        else if case .string(let s)? = v["prefix"] { c = .prefix(key, s) }
        else if case .string(let s)? = v["matches"] {
            do { c = .matches(key, try NSRegularExpressionBox(s)) } catch { throw fail("invalid regular expression \"\(s)\"") }
        } else { throw fail("condition on \"\(key)\" needs exists, equals, in, not_in, prefix or matches") }
        // `default`: the value assumed when the annotation is missing (Socorro's ProcessType → browser).
        if case .string(let d)? = v["default"] {
            c = .any([.all([.not(.exists(key)), ThrottleCondition.substitute(c, key: key, value: d)]), .all([.exists(key), c])])
        }
        return c
    }

    /// The decision and the rule that made it.
    public func decide(_ annotations: [String: String]) -> (ThrottleResult, String) {
        for rule in rules where rule.condition.holds(annotations) {
            let result: ThrottleResult
            switch rule.outcome {
            case .fixed(let r): result = r
            case .sampled(let percent, let then, let otherwise): result = roll() < percent ? then : otherwise
            }
            if result != .continue { return (result, rule.name) }
        }
        return (.reject, "NO_MATCH")
    }
}

extension ThrottleCondition {
    /// `c` evaluated as if `key` had `value`.
    static func substitute(_ c: ThrottleCondition, key: String, value: String) -> ThrottleCondition {
        c.holds([key: value]) ? .always : .not(.always)
    }
}

extension JSONValue {
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}
