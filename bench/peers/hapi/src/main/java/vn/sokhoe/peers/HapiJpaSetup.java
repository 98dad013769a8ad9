package vn.sokhoe.peers;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The smallest wiring of HAPI's JPA server that serves R4 with HAPI's default settings.
 *
 * <p>HAPI's own configuration classes ({@link JpaR4Config}, {@link HapiJpaConfig}, batch jobs)
 * define the DAOs, search, paging and resource providers; what an application must give them is
 * the storage settings, the partition settings, the entity manager factory and its transaction
 * manager, the in-process message channels its batch jobs use (HAPI's default, {@link
 * SubscriptionChannelConfig}), and the {@link RestfulServer} that puts the providers on HTTP.
 * Every setting is HAPI's default ({@code new JpaStorageSettings()}): no authorisation, no
 * request validation, server-assigned sequential ids, search results cached and reused for a
 * minute. As in HAPI's starter project, Hibernate creates the schema on the empty database and
 * the optional full-text index (Hibernate Search) is off.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionChannelConfig.class,
	ThreadPoolFactoryConfig.class
})
public class HapiJpaSetup {

	@Bean
	public JpaStorageSettings storageSettings() {
		return new JpaStorageSettings();
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beans,
			FhirContext context,
			JpaStorageSettings settings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beans, context, settings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		Properties properties = new Properties();
		properties.put("hibernate.dialect", HapiFhirPostgresDialect.class.getName());
		properties.put("hibernate.hbm2ddl.auto", "update");
		properties.put("hibernate.search.enabled", "false");
		factory.setJpaProperties(properties);
		return factory;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory factory) {
		return new JpaTransactionManager(factory);
	}

	/**
	 * The REST server: every resource type's provider, the system provider (transactions and
	 * batches POSTed to the base, {@code $everything} lives on the Patient provider), search
	 * paging through the database, the capability statement, JSON by default.
	 */
	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory providers,
			@Qualifier("mySystemProviderR4") JpaSystemProvider<?, ?> systemProvider,
			DatabaseBackedPagingProvider paging,
			JpaStorageSettings settings,
			ISearchParamRegistry searchParams,
			IValidationSupport validation) {
		RestfulServer server = new RestfulServer(systemDao.getContext());
		server.registerProviders(providers.createProviders());
		server.registerProvider(systemProvider);
		server.setPagingProvider(paging);
		server.setServerConformanceProvider(
				new JpaCapabilityStatementProvider(server, systemDao, settings, searchParams, validation));
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		return server;
	}
}
