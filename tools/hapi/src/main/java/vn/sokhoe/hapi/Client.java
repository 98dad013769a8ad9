package vn.sokhoe.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.rest.api.MethodOutcome;
import ca.uhn.fhir.rest.client.api.IGenericClient;
import ca.uhn.fhir.rest.client.api.ServerValidationModeEnum;
import ca.uhn.fhir.rest.client.interceptor.BearerTokenAuthInterceptor;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.hl7.fhir.instance.model.api.IBaseOperationOutcome;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.ContactPoint;
import org.hl7.fhir.r4.model.Enumerations.AdministrativeGender;
import org.hl7.fhir.r4.model.IdType;
import org.hl7.fhir.r4.model.Observation;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r4.model.Parameters;
import org.hl7.fhir.r4.model.Patient;
import org.hl7.fhir.r4.model.Quantity;
import org.hl7.fhir.r4.model.Reference;

/**
 * A scripted session of HAPI FHIR's generic client ({@code IGenericClient}, R4) against a running
 * sokhoe: what a hospital vendor's Java integration does first. Every step checks what the
 * server answered and prints one line; the first failure prints {@code FAILED <step>: why} to
 * stderr and exits 1.
 *
 * <p>Steps: create a Patient; create it again with {@code If-None-Exist} (no second Patient);
 * conditional update ({@code PUT Patient?identifier=...}); five Observations, then a search of
 * two a page followed by {@code loadPage().next}; a transaction Bundle (a Patient and an
 * Observation pointing at it by {@code urn:uuid}); {@code $everything}; type-level
 * {@code $validate} of an invalid Observation and a valid Patient.
 */
final class Client {
  static final String CCCD = "https://fhir.sokhoe.vn/sid/cccd";
  static final String LOINC = "http://loinc.org";

  private final IGenericClient client;
  private String step = "start";

  private Client(IGenericClient client) {
    this.client = client;
  }

  static int run(String[] args) {
    if (args.length != 2) {
      Main.usage();
    }
    FhirContext ctx = FhirContext.forR4();
    // sokhoe's CapabilityStatement is not fetched before each first request (HAPI's default
    // would, once): the session tests the interactions, /metadata has its own tests
    ctx.getRestfulClientFactory().setServerValidationMode(ServerValidationModeEnum.NEVER);
    IGenericClient generic = ctx.newRestfulGenericClient(args[0]);
    generic.registerInterceptor(new BearerTokenAuthInterceptor(args[1]));
    Client session = new Client(generic);
    try {
      session.script();
    } catch (BaseServerResponseException e) {
      System.err.println(
          "FAILED " + session.step + ": HTTP " + e.getStatusCode() + " " + e.getMessage()
              + (e.getResponseBody() == null ? "" : "\n" + e.getResponseBody()));
      return 1;
    } catch (RuntimeException | AssertionError e) {
      System.err.println("FAILED " + session.step + ": " + e);
      return 1;
    }
    System.out.println("OK all steps passed");
    return 0;
  }

  private void script() {
    String cccd = newCccd();
    String byCccd = "Patient?identifier=" + CCCD + "|" + cccd;

    step = "create";
    MethodOutcome created = client.create().resource(patient(cccd)).execute();
    String pid = created.getId().getIdPart();
    check(Boolean.TRUE.equals(created.getCreated()), "201 Created expected");
    check(created.getId().getVersionIdPart() != null, "Location/ETag with a version expected");
    say("POST Patient -> Patient/" + pid + " version " + created.getId().getVersionIdPart());

    step = "conditional create (If-None-Exist)";
    MethodOutcome again = client.create().resource(patient(cccd)).conditionalByUrl(byCccd).execute();
    check(pid.equals(again.getId().getIdPart()), "the existing Patient expected, got " + again.getId());
    check(!Boolean.TRUE.equals(again.getCreated()), "200 (not created) expected");
    say("POST Patient If-None-Exist " + byCccd + " -> existing Patient/" + pid);

    step = "conditional update";
    Patient changed = patient(cccd);
    changed.addTelecom().setSystem(ContactPoint.ContactPointSystem.PHONE).setValue("0912000111");
    MethodOutcome updated = client.update().resource(changed).conditionalByUrl(byCccd).execute();
    check(pid.equals(updated.getId().getIdPart()), "same Patient expected, got " + updated.getId());
    Patient read = client.read().resource(Patient.class).withId(pid).execute();
    check(read.getTelecomFirstRep().getValue().equals("0912000111"), "the update was not kept");
    say("PUT " + byCccd + " -> Patient/" + pid + " version " + read.getIdElement().getVersionIdPart());

    step = "create observations";
    Set<String> observations = new LinkedHashSet<>();
    for (int i = 0; i < 5; i++) {
      observations.add(client.create().resource(heartRate("Patient/" + pid, 60 + i)).execute()
          .getId().getIdPart());
    }
    say("POST Observation x5 -> " + observations);

    step = "search with paging";
    Bundle page = client.search().forResource(Observation.class)
        .where(Observation.SUBJECT.hasId("Patient/" + pid)).count(2)
        .returnBundle(Bundle.class).execute();
    check(page.getTotal() == 5, "total 5 expected, got " + page.getTotal());
    List<String> seen = new ArrayList<>();
    int pages = 0;
    while (true) {
      pages++;
      check(page.getEntry().size() <= 2, "a page larger than _count=2");
      page.getEntry().forEach(e -> seen.add(e.getResource().getIdElement().getIdPart()));
      if (page.getLink(Bundle.LINK_NEXT) == null) {
        break;
      }
      check(pages < 10, "paging does not end");
      page = client.loadPage().next(page).execute();
    }
    check(pages == 3, "3 pages expected, got " + pages);
    check(seen.size() == 5 && new LinkedHashSet<>(seen).equals(observations),
        "each observation once expected, got " + seen);
    say("GET Observation?subject=Patient/" + pid + "&_count=2 -> " + pages + " pages, " + seen);

    step = "transaction";
    Bundle tx = new Bundle().setType(Bundle.BundleType.TRANSACTION);
    String urn = "urn:uuid:" + UUID.randomUUID();
    String second = newCccd();
    tx.addEntry().setFullUrl(urn).setResource(patient(second)).getRequest()
        .setMethod(Bundle.HTTPVerb.POST).setUrl("Patient")
        .setIfNoneExist("identifier=" + CCCD + "|" + second);
    tx.addEntry().setResource(heartRate(urn, 88)).getRequest()
        .setMethod(Bundle.HTTPVerb.POST).setUrl("Observation");
    Bundle answer = client.transaction().withBundle(tx).execute();
    check(answer.getType() == Bundle.BundleType.TRANSACTIONRESPONSE, "transaction-response expected");
    check(answer.getEntry().size() == 2, "2 entries expected");
    for (Bundle.BundleEntryComponent e : answer.getEntry()) {
      check(e.getResponse().getStatus().startsWith("201"), "201 expected: " + e.getResponse().getStatus());
    }
    String newPatient = new IdType(answer.getEntry().get(0).getResponse().getLocation()).getIdPart();
    String newObs = new IdType(answer.getEntry().get(1).getResponse().getLocation()).getIdPart();
    Observation stored = client.read().resource(Observation.class).withId(newObs).execute();
    check(("Patient/" + newPatient).equals(stored.getSubject().getReference()),
        "urn:uuid not resolved: " + stored.getSubject().getReference());
    say("POST / transaction -> Patient/" + newPatient + ", Observation/" + newObs + " subject "
        + stored.getSubject().getReference());

    step = "$everything";
    Bundle everything = client.operation().onInstance(new IdType("Patient", pid))
        .named("$everything").withNoParameters(Parameters.class).useHttpGet()
        .returnResourceType(Bundle.class).execute();
    Set<String> all = new LinkedHashSet<>();
    while (true) {
      everything.getEntry().forEach(e -> all.add(e.getResource().getIdElement().toUnqualifiedVersionless().getValue()));
      if (everything.getLink(Bundle.LINK_NEXT) == null) {
        break;
      }
      everything = client.loadPage().next(everything).execute();
    }
    check(all.contains("Patient/" + pid), "the Patient expected in $everything: " + all);
    for (String o : observations) {
      check(all.contains("Observation/" + o), "Observation/" + o + " expected in $everything");
    }
    check(!all.contains("Observation/" + newObs), "another patient's Observation in $everything");
    say("GET Patient/" + pid + "/$everything -> " + all.size() + " resources");

    step = "$validate (invalid)";
    // an Observation without its required status and code (1..1 both); HAPI's model lets the
    // client build it, the server must say what is wrong
    Observation invalid = heartRate("Patient/" + pid, 70);
    invalid.setStatus(null);
    invalid.setCode(null);
    OperationOutcome bad = validate(invalid);
    check(errors(bad) > 0, "an error expected for an Observation without status and code");
    say("POST Observation/$validate (no status, no code) -> " + errors(bad) + " error(s): "
        + bad.getIssueFirstRep().getDiagnostics());

    step = "$validate (valid)";
    OperationOutcome good = validate(patient(newCccd()));
    check(errors(good) == 0, "no error expected: " + good.getIssueFirstRep().getDiagnostics());
    say("POST Patient/$validate (valid) -> no error");
  }

  /** Type-level $validate through the client's own validate() (the resource in a Parameters
   * {@code resource} parameter); an answer of 4xx with an OperationOutcome counts as its outcome. */
  private OperationOutcome validate(org.hl7.fhir.r4.model.Resource p) {
    try {
      IBaseOperationOutcome oo = client.validate().resource(p).execute().getOperationOutcome();
      check(oo instanceof OperationOutcome, "an OperationOutcome expected");
      return (OperationOutcome) oo;
    } catch (BaseServerResponseException e) {
      if (e.getOperationOutcome() instanceof OperationOutcome oo) {
        return oo;
      }
      throw e;
    }
  }

  private static long errors(OperationOutcome oo) {
    return oo.getIssue().stream()
        .filter(i -> i.getSeverity() == OperationOutcome.IssueSeverity.ERROR
            || i.getSeverity() == OperationOutcome.IssueSeverity.FATAL)
        .count();
  }

  private static Patient patient(String cccd) {
    Patient p = new Patient();
    p.addIdentifier().setSystem(CCCD).setValue(cccd);
    p.addName().setFamily("Trần").addGiven("Thị").addGiven("Hoa");
    p.setGender(AdministrativeGender.FEMALE);
    p.getBirthDateElement().setValueAsString("1990-07-21");
    return p;
  }

  private static Observation heartRate(String subject, int value) {
    Observation o = new Observation();
    o.setStatus(Observation.ObservationStatus.FINAL);
    o.getCode().addCoding().setSystem(LOINC).setCode("8867-4").setDisplay("Heart rate");
    o.setSubject(new Reference(subject));
    o.getEffectiveDateTimeType().setValueAsString("2026-07-01T08:00:00+07:00");
    o.setValue(new Quantity().setValue(value).setUnit("/min")
        .setSystem("http://unitsofmeasure.org").setCode("/min"));
    return o;
  }

  /** A well-formed CCCD (Hồ Chí Minh City, a woman born in the 1900s) with random digits. */
  private static String newCccd() {
    return String.format("079190%06d", new SecureRandom().nextInt(1_000_000));
  }

  private static void check(boolean ok, String why) {
    if (!ok) {
      throw new AssertionError(why);
    }
  }

  private static void say(String line) {
    System.out.println("ok " + line);
  }
}
