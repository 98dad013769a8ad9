package vn.sokhoe.peers;

import ca.uhn.fhir.rest.server.RestfulServer;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * HAPI FHIR's JPA server (R4) as a Spring Boot application, the peer that `make bench-peers`
 * measures sokhoe against (issue 15 item 8).
 *
 * <p>The FHIR endpoint is {@code /fhir}, like sokhoe's. The database comes from Spring Boot's
 * datasource properties ({@code spring.datasource.url} and so on, given on the command line by
 * {@code sokhoe.bench.peer_servers}); the connection pool is Boot's default, HikariCP. Boot's own
 * JPA, Flyway and Elasticsearch auto-configurations are left out, as HAPI's starter project
 * leaves them: HAPI builds its entity manager factory itself ({@link HapiJpaSetup}), Flyway (on
 * the class path for HAPI's migrator) would migrate the database with no migrations of ours, and
 * the Elasticsearch client (on the class path for HAPI's optional full-text index) would look
 * for a cluster that is not there.
 */
@SpringBootApplication(
		exclude = {
			HibernateJpaAutoConfiguration.class,
			FlywayAutoConfiguration.class,
			ElasticsearchRestClientAutoConfiguration.class
		})
@Import(HapiJpaSetup.class)
public class HapiPeer {

	public static void main(String[] args) {
		SpringApplication.run(HapiPeer.class, args);
	}

	/** The FHIR REST servlet at {@code /fhir/*}, started with the application (not on first call). */
	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer server) {
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(server, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
