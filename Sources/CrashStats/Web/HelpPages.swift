import Foundation
import Hummingbird
import Storage

/// The documentation pages: the index, the Super Search guide (operators from the search field
/// types, example searches), the API reference with a "try it" form per GET model, the
/// deployment's protected-data access policy (`web.protected_data_policy_file`) and collector
/// throttling.
extension CrashStatsWeb {
    struct ModelDoc {
        let name: String
        let method: String
        let description: String
        let params: [(String, Bool, String)]
    }

    static let modelDocs: [ModelDoc] = [
        ModelDoc(name: "SuperSearch", method: "GET", description: "Search crash reports: filters on any search field, columns, facets, aggregations, histograms (see the Super Search guide).",
                 params: [("product", false, "a product name"), ("signature", false, "a signature, with an operator prefix"), ("_columns", false, "fields per hit"),
                          ("_facets", false, "fields to count terms of"), ("_results_number", false, "hits per page")]),
        ModelDoc(name: "SuperSearchUnredacted", method: "GET", description: "Super Search including protected fields; needs View Personal Identifiable Information.",
                 params: [("signature", false, "a signature filter"), ("_columns", false, "fields per hit")]),
        ModelDoc(name: "SuperSearchFields", method: "GET", description: "Every search field: name, type, operators, permissions needed, description.", params: []),
        ModelDoc(name: "ProcessedCrash", method: "GET", description: "A processed crash, reduced to what you may see. `_bug_links=1` adds the product's create-a-bug links.",
                 params: [("crash_id", true, "the crash id")]),
        ModelDoc(name: "RawCrash", method: "GET", description: "A crash's annotations (`format=meta`), or a dump's bytes (`format=raw`, needs View Raw Dumps).",
                 params: [("crash_id", true, "the crash id"), ("format", false, "meta (default) or raw"), ("name", false, "the dump name for format=raw")]),
        ModelDoc(name: "SignatureFirstDate", method: "GET", description: "When each signature was first seen, and in which build.",
                 params: [("signatures", true, "a signature (repeatable)")]),
        ModelDoc(name: "Bugs", method: "GET", description: "Bugs associated with signatures, with the other signatures of those bugs.",
                 params: [("signatures", true, "a signature (repeatable)")]),
        ModelDoc(name: "SignaturesByBugs", method: "GET", description: "Signatures associated with bugs.", params: [("bug_ids", true, "a bug number (repeatable)")]),
        ModelDoc(name: "VersionString", method: "GET", description: "The version string of a beta or release build.",
                 params: [("product", true, "product"), ("channel", true, "release channel"), ("build_id", true, "build id")]),
        ModelDoc(name: "CrashVerify", method: "GET", description: "Where a crash is stored: raw, processed, indexed, exported.", params: [("crash_id", true, "the crash id")]),
        ModelDoc(name: "MissingProcessedCrash", method: "GET", description: "Crashes stored but never processed, found by the daily check.", params: [("page", false, "page number")]),
        ModelDoc(name: "NoOp", method: "GET", description: "Does nothing; for testing clients.", params: [("product", true, "any product")]),
        ModelDoc(name: "Reprocessing", method: "POST", description: "Queue crashes for reprocessing (`crash_ids`, repeatable; `<id>:regenerate_signature` for the signature only). Needs Reprocess Crashes.",
                 params: [("crash_ids", true, "a crash id, optionally with :ruleset (repeatable)")]),
        ModelDoc(name: "CrashSignature", method: "POST", description: "Signatures for crash data sent as JSON `{\"jobs\": [...]}`; header `DEBUG: 1` adds the generator's log.", params: []),
    ]

    func documentationIndex(_ request: Request) async -> Response {
        page(.ok, "documentation", ["title": "Documentation"], visitor: await visitor(request))
    }

    func superSearchGuide(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        var operators: [[String: Any]] = []
        for type in [CrashSearch.FieldType.string, .integer, .date, .boolean] {
            for (prefix, meaning) in Self.operators(type) where !prefix.hasPrefix("!") {
                operators.append(["type": type.rawValue, "prefix": prefix.isEmpty ? "(none)" : prefix, "meaning": meaning])
            }
        }
        operators.append(["type": "any", "prefix": "!", "meaning": "negates the operator after it (!=, !~, !__null__)"])
        let examples: [(String, [(String, String)])] = [
            ("Crashes of one product in the last week, by signature", [("product", "Firefox"), ("_facets", "signature")]),
            ("Signatures containing a word", [("signature", "~OOM")]),
            ("Exact signature, newest first", [("signature", "=OOM | small"), ("_sort", "-date")]),
            ("Long-running processes", [("uptime", ">3600"), ("_columns", "uuid"), ("_columns", "uptime"), ("_sort", "-uptime")]),
            ("Platforms per product", [("_aggs.product", "platform"), ("_results_number", "0")]),
            ("Daily counts by version", [("_histogram.date", "version"), ("_results_number", "0")]),
        ]
        return page(.ok, "supersearch", ["title": "Super Search", "operators": operators,
                                         "examples": examples.map { ["label": $0.0, "query": Self.queryString($0.1)] }], visitor: visitor)
    }

    func apiDocumentation(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let models = Self.modelDocs.map { m -> [String: Any] in
            ["name": m.name, "method": m.method, "description": m.description, "hasParams": !m.params.isEmpty, "tryable": m.method == "GET",
             "params": m.params.map { ["name": $0.0, "required": $0.1, "meaning": $0.2] }]
        }
        return page(.ok, "apidocs", ["title": "API", "models": models], visitor: visitor)
    }

    func protectedDataPolicy(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        var paragraphs: [String]
        if let path = protectedDataPolicyFile, let text = try? String(contentsOfFile: path, encoding: .utf8), text.utf8.count <= 1 << 20 {
            paragraphs = text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        } else {
            paragraphs = ["This deployment has not published its protected-data access policy (web.protected_data_policy_file).",
                          "Protected fields (URLs, comments, memory contents, exception messages and the like) are shown only to accounts holding the View Personal Identifiable Information permission; raw dumps need View Raw Dumps. Ask the administrators of this site for access."]
        }
        return page(.ok, "textpage", ["title": "Protected data access", "heading": "Protected data access", "paragraphs": paragraphs], visitor: visitor)
    }

    func throttling(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let products = api.products.isRestricted ? api.products.names.joined(separator: ", ") : "any product"
        let paragraphs = [
            "The collector decides for every crash report it receives whether to keep it. Reports are accepted (stored and processed at once), deferred (stored but not processed unless someone asks: the report page processes it on first view), or rejected (not stored; the client is told why with a Discarded= answer).",
            "Reports of products this site does not support are rejected. Supported products: \(products).",
            "Operators can set rules on any annotation (for example: keep every crash of a nightly build, keep one in ten of a release, reject a known-bad build) in the collector's throttle rules file; a client that sends Throttleable=0 is never throttled by sampling rules.",
            "A crash id ends with the throttle decision and the date the report arrived: 0 accepted, 1 deferred.",
        ]
        return page(.ok, "textpage", ["title": "Throttling", "heading": "Collector throttling", "paragraphs": paragraphs], visitor: visitor)
    }
}
