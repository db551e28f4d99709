import CrashModel
import Foundation
import Hummingbird
import JSONSupport
import Storage

/// The data dictionary `/documentation/datadictionary/`: every field of both schemas (the
/// deployment's `schema.dir` or the shipped ones) with its description, type, permissions, source
/// annotation, examples, data reviews and matching Super Search field.
extension CrashStatsWeb {
    static let datasets: [(name: String, label: String)] = [("annotation", "Crash annotations (raw crash)"), ("processed", "Processed crash")]

    func schema(_ dataset: String) -> CrashSchema? {
        dataset == "annotation" ? api.rawSchema : dataset == "processed" ? api.processedSchema : nil
    }

    static func typeText(_ node: CrashSchema.Node) -> String { node.types.isEmpty ? "any" : node.types.joined(separator: " or ") }

    /// The permissions as readers know them.
    static func permissionText(_ needed: [String]) -> String { needed.contains("protected") ? "protected (View Personal Identifiable Information)" : "public" }

    func dataDictionary(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let datasets = Self.datasets.map { ds -> [String: Any] in
            let schema = self.schema(ds.name)!
            let fields = schema.fieldNames.sorted { $0.lowercased() < $1.lowercased() }.compactMap { name -> [String: Any]? in
                guard let node = schema.field(name) else { return nil }
                let summary = node.description.split(separator: "\n").first.map(String.init) ?? ""
                return ["dataset": ds.name, "name": name, "nameURL": Self.pathComponent(name), "type": Self.typeText(node),
                        "permissions": Self.permissionText(schema.permissionsNeeded(name)), "summary": summary.count > 160 ? String(summary.prefix(157)) + "..." : summary]
            }
            return ["name": ds.name, "label": ds.label, "count": fields.count, "fields": fields]
        }
        return page(.ok, "datadictionary", ["title": "Data dictionary", "datasets": datasets], visitor: visitor)
    }

    func dataField(_ request: Request, dataset: String, field: String) async -> Response {
        let visitor = await visitor(request)
        guard let schema = schema(dataset), let node = schema.field(field), schema.fieldNames.contains(field),
              let label = Self.datasets.first(where: { $0.name == dataset })?.label else {
            return errorPage(.notFound, "Unknown field", "The data dictionary has no such field.")
        }
        var c: [String: Any] = ["title": field, "name": field, "datasetLabel": label, "description": node.description, "type": Self.typeText(node),
                                "permissions": Self.permissionText(schema.permissionsNeeded(field)), "deprecated": node.deprecated,
                                "examples": node.examples.map { $0.stringValue ?? $0.serialized() }, "hasExamples": !node.examples.isEmpty,
                                "reviews": node.dataReviews.filter(Self.isWebURL), "hasReviews": !node.dataReviews.filter(Self.isWebURL).isEmpty]
        if dataset == "processed" {
            if let source = node.sourceAnnotation { c["source"] = source; c["sourceURL"] = Self.pathComponent(source) }
            // The Super Search field answering this processed field.
            if let f = api.search.fields.first(where: { $0.source == field && !$0.name.contains(".") }) {
                c["searchField"] = f.name
                c["searchType"] = f.type.rawValue
                c["searchQuery"] = Self.queryString([("_columns", "uuid"), ("_columns", f.name), ("_facets", f.name)])
            }
        } else {
            let copies = api.processedSchema.annotationCopies.filter { $0.annotation == field }
            if !copies.isEmpty { c["copiedTo"] = ["fields": copies.map { ["name": $0.field, "url": Self.pathComponent($0.field)] }] }
        }
        return page(.ok, "datafield", c, visitor: visitor)
    }
}
