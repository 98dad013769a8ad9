package vn.sokhoe.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.SingleValidationMessage;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.NpmPackageValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.utilities.json.model.JsonObject;
import org.hl7.fhir.utilities.json.parser.JsonParser;
import org.hl7.fhir.utilities.npm.NpmPackage;

/**
 * HAPI FHIR's instance validator (the one HAPI's own server runs) over JSON files, offline: the
 * core R4 definitions shipped in hapi-fhir-validation-resources-r4, in-memory terminology (code
 * systems small enough to ship, plus the common ones HAPI knows: UCUM, MIME types, languages,
 * countries), snapshots generated for differential profiles, and the conformance resources of
 * each {@code --package} (a FHIR NPM package: a folder holding {@code package/}, the
 * {@code package/} folder itself, or a {@code .tgz}). No terminology server, no network.
 *
 * <p>A file is one JSON resource (a Bundle is validated whole, as one resource) or NDJSON (one
 * resource a line). Output: one JSON line per resource: {@code {"file", "line", "resourceType",
 * "id", "issues": [{"severity", "location", "message", "messageId"}]}}. Exit 0 when it ran (the
 * caller judges the issues), 2 on a usage or reading error.
 */
final class Validate {
  private Validate() {}

  static int run(String[] args) throws IOException {
    List<Path> packages = new ArrayList<>();
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--package") && i + 1 < args.length) {
        packages.add(Path.of(args[++i]));
      } else {
        files.add(Path.of(args[i]));
      }
    }
    if (files.isEmpty()) {
      Main.usage();
    }
    FhirContext ctx = FhirContext.forR4();
    List<IValidationSupport> supports = new ArrayList<>();
    supports.add(new DefaultProfileValidationSupport(ctx));
    for (Path p : packages) {
      supports.add(loadPackage(ctx, p));
    }
    supports.add(new SnapshotGeneratingValidationSupport(ctx));
    supports.add(new InMemoryTerminologyServerValidationSupport(ctx));
    supports.add(new CommonCodeSystemsTerminologyService(ctx));
    ValidationSupportChain chain = new ValidationSupportChain(supports);
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    FhirValidator validator = ctx.newValidator().registerValidatorModule(module);

    BufferedWriter out =
        new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
    for (Path file : files) {
      String text = Files.readString(file, StandardCharsets.UTF_8);
      String trimmed = text.strip();
      boolean ndjson = file.toString().endsWith(".ndjson");
      if (!ndjson) {
        out.write(report(validator, file, 0, trimmed));
        continue;
      }
      String[] lines = text.split("\n", -1);
      List<Integer> numbers = new ArrayList<>();
      List<String> batch = new ArrayList<>();
      for (int n = 0; n < lines.length; n++) {
        if (!lines[n].isBlank()) {
          numbers.add(n + 1);
          batch.add(lines[n]);
        }
        if (batch.size() == BATCH || (n == lines.length - 1 && !batch.isEmpty())) {
          for (String line : batched(validator, file, numbers, batch)) {
            out.write(line);
          }
          numbers.clear();
          batch.clear();
        }
      }
    }
    out.flush();
    return 0;
  }

  /** One output line for a whole file (a resource or a Bundle, validated as it is). */
  private static String report(FhirValidator validator, Path file, int line, String json) {
    List<String[]> issues = new ArrayList<>();
    for (SingleValidationMessage m : validator.validateWithResult(json).getMessages()) {
      issues.add(issue(m, clean(m.getLocationString())));
    }
    return line(file, line, field(json, "resourceType"), field(json, "id"), issues);
  }

  /**
   * NDJSON lines validated {@value #BATCH} at a time as the entries of one collection Bundle, each
   * issue given back to its line with the location rewritten from
   * {@code Bundle.entry[k].resource.x} to {@code Type.x}.
   *
   * <p>Why: HAPI's {@code FhirInstanceValidator} builds a new {@code InstanceValidator} for every
   * call (reading, among others, its table of OIDs), which costs more than validating a small
   * resource; one call per batch validates the demo registry's thousands of Organizations and
   * Practitioners in seconds instead of minutes. An entry is checked against its own profile
   * exactly as when alone (https://hl7.org/fhir/R4/bundle.html#bundle-validation). The wrapper's
   * own issues, if HAPI finds any, are reported on a line of type "Bundle" and line 0.
   */
  private static List<String> batched(
      FhirValidator validator, Path file, List<Integer> numbers, List<String> lines) {
    StringBuilder bundle = new StringBuilder("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[");
    for (int k = 0; k < lines.size(); k++) {
      // a server-style fullUrl, so that "Organization/x" in one entry finds entry x as it
      // would on the server (and HAPI checks the target's type); urn:uuid when there is no id
      String type = field(lines.get(k), "resourceType");
      String id = field(lines.get(k), "id");
      String fullUrl = type != null && id != null ? BASE + type + "/" + id : "urn:uuid:" + UUID.randomUUID();
      bundle.append(k == 0 ? "" : ",").append("{\"fullUrl\":").append(Main.quote(fullUrl))
          .append(",\"resource\":").append(lines.get(k)).append('}');
    }
    bundle.append("]}");
    List<List<String[]>> issues = new ArrayList<>();
    List<String> types = new ArrayList<>();
    for (String json : lines) {
      issues.add(new ArrayList<>());
      types.add(field(json, "resourceType"));
    }
    List<String[]> wrapper = new ArrayList<>();
    for (SingleValidationMessage m : validator.validateWithResult(bundle.toString()).getMessages()) {
      if (m.getMessageId() != null && m.getMessageId().startsWith(WRAPPER_ONLY)) {
        continue;
      }
      String location = clean(m.getLocationString());
      Matcher entry = ENTRY.matcher(location == null ? "" : location);
      if (entry.lookingAt() && Integer.parseInt(entry.group(1)) < lines.size()) {
        int k = Integer.parseInt(entry.group(1));
        issues.get(k).add(issue(m, types.get(k) + location.substring(entry.end())));
      } else {
        wrapper.add(issue(m, location));
      }
    }
    List<String> out = new ArrayList<>();
    for (int k = 0; k < lines.size(); k++) {
      out.add(line(file, numbers.get(k), types.get(k), field(lines.get(k), "id"), issues.get(k)));
    }
    if (!wrapper.isEmpty()) {
      out.add(line(file, 0, "Bundle", null, wrapper));
    }
    return out;
  }

  private static final int BATCH = 200;
  /** "Entry n matches the reference X/id/_history/v by type and id but its fullUrl does not
   * match": a versioned reference compared with the wrapper's unversioned fullUrls. It exists
   * only because of the wrapper (a resource validated alone never gets it), so it is dropped. */
  private static final String WRAPPER_ONLY = "BUNDLE_BUNDLE_POSSIBLE_MATCH";
  private static final String BASE = "https://batch.sokhoe.invalid/fhir/";
  private static final Pattern ENTRY = Pattern.compile("Bundle\\.entry\\[(\\d+)\\]\\.resource");
  private static final Pattern COMMENT = Pattern.compile("/\\*.*?\\*/");

  /** HAPI's locations carry the resource's id as a comment ({@code resource/*Patient/1*\/.x}). */
  private static String clean(String location) {
    return location == null ? null : COMMENT.matcher(location).replaceAll("");
  }

  private static String[] issue(SingleValidationMessage m, String location) {
    return new String[] {m.getSeverity().getCode(), location, m.getMessage(), m.getMessageId()};
  }

  private static String line(Path file, int line, String type, String id, List<String[]> issues) {
    StringBuilder b = new StringBuilder(256);
    b.append("{\"file\":").append(Main.quote(file.toString()));
    b.append(",\"line\":").append(line);
    b.append(",\"resourceType\":").append(Main.quote(type));
    b.append(",\"id\":").append(Main.quote(id));
    b.append(",\"issues\":[");
    for (int i = 0; i < issues.size(); i++) {
      String[] m = issues.get(i);
      b.append(i == 0 ? "" : ",");
      b.append("{\"severity\":").append(Main.quote(m[0]));
      b.append(",\"location\":").append(Main.quote(m[1]));
      b.append(",\"message\":").append(Main.quote(m[2]));
      b.append(",\"messageId\":").append(Main.quote(m[3])).append('}');
    }
    return b.append("]}\n").toString();
  }

  /** A top-level string of the resource (a label for the caller; null when the text is not
   * a JSON object: the validator reports that itself). */
  private static String field(String json, String name) {
    try {
      JsonObject object = JsonParser.parseObject(json);
      return object.hasString(name) ? object.asString(name) : null;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /** The conformance resources of one FHIR NPM package. */
  private static NpmPackageValidationSupport loadPackage(FhirContext ctx, Path where)
      throws IOException {
    NpmPackageValidationSupport support = new NpmPackageValidationSupport(ctx);
    if (Files.isDirectory(where)) {
      Path folder = Files.isDirectory(where.resolve("package")) ? where.resolve("package") : where;
      try (Stream<Path> listing = Files.list(folder)) {
        for (Path p : listing.sorted().toList()) {
          String name = p.getFileName().toString();
          if (name.endsWith(".json") && !name.equals("package.json") && !name.startsWith(".")) {
            add(ctx, support, Files.readString(p, StandardCharsets.UTF_8));
          }
        }
      }
    } else {
      try (InputStream in = Files.newInputStream(where)) {
        NpmPackage pkg = NpmPackage.fromPackage(in);
        NpmPackage.NpmPackageFolder folder = pkg.getFolders().get("package");
        for (String name : folder.listFiles()) {
          if (name.endsWith(".json") && !name.equals("package.json") && !name.startsWith(".")) {
            add(ctx, support, new String(folder.fetchFile(name), StandardCharsets.UTF_8));
          }
        }
      }
    }
    return support;
  }

  private static void add(FhirContext ctx, NpmPackageValidationSupport support, String json) {
    if (json.contains("\"resourceType\"")) {
      support.addResource(ctx.newJsonParser().parseResource(json));
    }
  }
}
