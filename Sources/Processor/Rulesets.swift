import CrashModel
import Signatures
import Stackwalker
import Storage

/// The processor's rulesets, as Socorro names them: which rules run, in order. A new rule goes
/// into the list here (rules themselves live in `Rules.swift` and its neighbours).
public enum Ruleset: String, Sendable, CaseIterable {
    /// Every rule.
    case `default`
    /// Only signature generation, on the existing processed crash.
    case regenerateSignature = "regenerate_signature"
    /// The default rules, queued because symbols a crash lacked became available.
    case lateSymbols = "late_symbols"

    static func rules(metadata: MetadataStore, walker: Stackwalker, signatures: SignatureGenerator, stackwalkTimeLimit: Duration,
                      betaVersionProducts: Set<String>, schemas: CrashSchemas) -> [Ruleset: [any ProcessorRule]] {
        let signature = SignatureRule(generator: signatures)
        let all: [any ProcessorRule] = [
            DeNullRule(), CrashReportKeysRule(), ConvertModuleSignatureInfoRule(), CopyFromRawCrashRule(fields: schemas.processed.annotationCopies),
            VersionRewriteRule(), IdentifierRule(),
            StackwalkRule(walker: walker, timeLimit: stackwalkTimeLimit), ModuleURLRewriteRule(), CrashingThreadInfoRule(),
            TruncateStacksRule(), CrashAnalysisRule(), PluginRule(), ProcessTypeRule(), AnnotationDetailsRule(), AddonsRule(),
            DatesAndTimesRule(), OutOfMemoryBinaryRule(), PHCRule(), BreadcrumbsRule(),
            JavaRule(), MacDetailsRule(), MozCrashReasonRule(), PlatformInfoRule(),
            BetaVersionRule(products: Set(betaVersionProducts.map { $0.lowercased() }), lookup: metadata),
            StackSummaryRule(), ThemePrettyNameRule(), MemoryReportExtractionRule(), SoftErrorsRule(), signature,
        ]
        return [.default: all, .lateSymbols: all, .regenerateSignature: [signature]]
    }
}
