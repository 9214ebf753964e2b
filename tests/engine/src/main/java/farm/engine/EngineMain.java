package farm.engine;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;

/**
 * Runs one single-node Elasticsearch or OpenSearch node in this JVM, for farm's tests.
 *
 * <p>Usage: {@code java -cp target/classes:target/<engine>/lib/* farm.engine.EngineMain <http-port> <data-dir>}
 *
 * <p>The engine is whichever server jar is on the classpath; this class is compiled without either,
 * and reaches the handful of engine classes it needs by reflection, so one build serves both.
 * The node binds 127.0.0.1 only, keeps data, logs and config under the data dir, and prints
 * {@code engine ready on http://127.0.0.1:<port>} to stdout once cluster health is at least yellow.
 * It then runs until the JVM is terminated: SIGTERM closes the node cleanly; after SIGKILL the same
 * data dir can be reused (the node lock dies with the process). With {@code -Dfarm.engine.parentPid=N}
 * it also exits when process N does, so a killed test run leaves no node behind.
 */
public final class EngineMain {

    private static final String READY_LINE = "engine ready on http://127.0.0.1:";

    /** OpenSearch plugins loaded from the classpath (those present; the pom decides which). */
    private static final List<String> OPENSEARCH_PLUGINS = List.of(
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.index.reindex.ReindexPlugin"
    );

    private EngineMain() {}

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable t) {
            // System.err may already be redirected into the engine's log: report on the real stderr,
            // ending with the causes on their own lines, where a log tail shows them.
            PrintStream stderr = new PrintStream(new FileOutputStream(FileDescriptor.err), true);
            t.printStackTrace(stderr);
            for (Throwable cause = t; cause != null; cause = cause.getCause()) {
                stderr.println("engine failed to start: " + cause);
            }
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: EngineMain <http-port> <data-dir>");
            System.exit(2);
        }
        int httpPort = Integer.parseInt(args[0]);
        Path dataDir = Path.of(args[1]).toAbsolutePath();
        // Both engines redirect System.out into their log once logging is configured: keep the real stdout.
        PrintStream stdout = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        // The node's own shutdown hook logs the close; log4j's would stop logging before it.
        System.setProperty("log4j2.shutdownHookEnabled", "false");

        boolean elastic = classExists("org.elasticsearch.node.Node");
        boolean open = classExists("org.opensearch.node.Node");
        if (elastic == open) {
            throw new IllegalStateException("need exactly one engine on the classpath (elasticsearch or opensearch), found "
                + (elastic ? "both" : "none"));
        }
        String pkg = elastic ? "org.elasticsearch" : "org.opensearch";
        Class<?> nodeClass = Class.forName(pkg + ".node.Node");
        // path.home is the build's engine dir (target/<engine>), whose lib/ holds the server jar; modules/ sits beside it.
        Path home = Path.of(nodeClass.getProtectionDomain().getCodeSource().getLocation().toURI()).getParent().getParent();
        Path configDir = dataDir.resolve("config");
        Path logsDir = dataDir.resolve("logs");
        Files.createDirectories(configDir);
        Files.createDirectories(logsDir);
        writeLogConfig(configDir, logsDir);

        Object environment = newEnvironment(pkg, nodeSettings(home, dataDir, httpPort), configDir);
        Class<?> logConfigurator = Class.forName(pkg + ".common.logging.LogConfigurator");
        invokeStatic(logConfigurator, "registerErrorListener");
        Object node;
        if (elastic) {
            invokeStatic(logConfigurator, "configure", environment, true);
            prepareElasticsearchModules(home.resolve("modules"));
            node = newElasticsearchNode(pkg, nodeClass, environment);
        } else {
            invokeStatic(logConfigurator, "configure", environment);
            node = newOpenSearchNode(nodeClass, environment);
        }

        Runtime.getRuntime().addShutdownHook(new Thread(() -> closeNode(node), "farm-engine-shutdown"));
        invoke(node, "start");
        watchParentProcess();
        waitForHealth(httpPort);
        stdout.println(READY_LINE + httpPort);
        Thread.currentThread().join(); // the node's threads are daemons: keep the JVM up until it is terminated
    }

    /** Node settings shared by both engines; keys either engine would reject as unknown are left out. */
    private static Map<String, String> nodeSettings(Path home, Path dataDir, int httpPort) {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("path.home", home.toString());
        settings.put("path.data", dataDir.resolve("data").toString());
        settings.put("path.logs", dataDir.resolve("logs").toString());
        settings.put("cluster.name", "farm-test");
        settings.put("node.name", "farm-engine");
        settings.put("network.host", "127.0.0.1");
        settings.put("http.port", Integer.toString(httpPort));
        // Nothing connects to the transport layer of a single node: an ephemeral port never clashes.
        settings.put("transport.port", "0");
        settings.put("discovery.type", "single-node");
        // A shared test machine's disk may be nearly full; tests must not turn read-only because of it.
        settings.put("cluster.routing.allocation.disk.threshold_enabled", "false");
        // With a 1 GB heap the real-memory breaker trips on GC timing rather than on real pressure.
        settings.put("indices.breaker.total.use_real_memory", "false");
        // Tests clean up with wildcard deletes (DELETE farm-*).
        settings.put("action.destructive_requires_name", "false");
        clusterSettings(settings);
        return settings;
    }

    /**
     * A node of a multi-node test cluster: {@code -Dfarm.engine.settings=key=value;key=value...}
     * adds or replaces settings (node.name, transport.port, discovery.seed_hosts,
     * cluster.initial_cluster_manager_nodes); with seed hosts the node is no longer single-node.
     */
    private static void clusterSettings(Map<String, String> settings) {
        String extra = System.getProperty("farm.engine.settings", "");
        for (String pair : extra.split(";")) {
            int eq = pair.indexOf('=');
            if (eq > 0) {
                settings.put(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
            }
        }
        if (settings.containsKey("discovery.seed_hosts")) {
            settings.remove("discovery.type");
        }
    }

    private static Object newEnvironment(String pkg, Map<String, String> settings, Path configDir) throws Exception {
        Class<?> settingsClass = Class.forName(pkg + ".common.settings.Settings");
        Object builder = settingsClass.getMethod("builder").invoke(null);
        Method put = builder.getClass().getMethod("put", String.class, String.class);
        for (Map.Entry<String, String> e : settings.entrySet()) {
            put.invoke(builder, e.getKey(), e.getValue());
        }
        Object built = builder.getClass().getMethod("build").invoke(builder);
        return Class.forName(pkg + ".env.Environment").getConstructor(settingsClass, Path.class).newInstance(built, configDir);
    }

    /** Elasticsearch 8: plugins come only from the modules dir, through a PluginsLoader. */
    private static Object newElasticsearchNode(String pkg, Class<?> nodeClass, Object environment) throws Exception {
        Class<?> loaderClass = Class.forName(pkg + ".plugins.PluginsLoader");
        Object modules = invokeStatic(loaderClass, "loadModulesBundles", invoke(environment, "modulesDir"));
        Object plugins = invokeStatic(loaderClass, "loadPluginsBundles", invoke(environment, "pluginsDir"));
        // Last argument false: the server runs from the classpath, not as the named module the exports service expects.
        Object loader = invokeStatic(loaderClass, "createPluginsLoader", modules, plugins, Map.of(), false);
        return nodeClass.getConstructor(environment.getClass(), loaderClass).newInstance(environment, loader);
    }

    /** OpenSearch 2: the (test-framework) constructor that takes plugin classes from the classpath. */
    private static Object newOpenSearchNode(Class<?> nodeClass, Object environment) throws Exception {
        List<Class<?>> plugins = new ArrayList<>();
        for (String name : OPENSEARCH_PLUGINS) {
            if (classExists(name)) {
                plugins.add(Class.forName(name));
            }
        }
        Constructor<?> constructor = nodeClass.getDeclaredConstructor(environment.getClass(), Collection.class, boolean.class);
        constructor.setAccessible(true);
        return constructor.newInstance(environment, plugins, true);
    }

    /**
     * Elasticsearch's module jars carry their descriptor inside (META-INF/es-plugins/NAME/), while the loader
     * reads it from the module dir: put it there, without {@code modulename}, so the module loads like a
     * classic plugin on a class loader instead of as a Java module layer over a server that is not one.
     */
    private static void prepareElasticsearchModules(Path modulesDir) throws IOException {
        try (var dirs = Files.list(modulesDir)) {
            for (Path moduleDir : (Iterable<Path>) dirs::iterator) {
                Path descriptor = moduleDir.resolve("plugin-descriptor.properties");
                if (Files.exists(descriptor)) {
                    continue;
                }
                String entryName = "META-INF/es-plugins/" + moduleDir.getFileName() + "/plugin-descriptor.properties";
                try (var jars = Files.list(moduleDir)) {
                    for (Path jar : (Iterable<Path>) jars::iterator) {
                        if (!jar.toString().endsWith(".jar")) {
                            continue;
                        }
                        try (JarFile jarFile = new JarFile(jar.toFile())) {
                            ZipEntry entry = jarFile.getEntry(entryName);
                            if (entry == null) {
                                continue;
                            }
                            String text;
                            try (InputStream in = jarFile.getInputStream(entry)) {
                                text = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
                            }
                            // Written aside then moved, as several nodes may start at once from one build.
                            Path tmp = Files.createTempFile(moduleDir, "descriptor", ".tmp");
                            Files.writeString(tmp, text.replaceAll("(?m)^modulename=.*$", ""), StandardCharsets.ISO_8859_1);
                            Files.move(tmp, descriptor, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                        }
                    }
                }
            }
        }
    }

    /** INFO and up to logs/engine.log; WARN and up also to stderr, where a person running the node sees them. */
    private static void writeLogConfig(Path configDir, Path logsDir) throws IOException {
        String pattern = "[%d{ISO8601}][%-5p][%-25c{1.}] %m%n";
        String config = String.join("\n",
            "status = error",
            "appender.file.type = File",
            "appender.file.name = file",
            "appender.file.fileName = " + logsDir.resolve("engine.log"),
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = " + pattern,
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = " + pattern,
            "appender.console.filter.threshold.type = ThresholdFilter",
            "appender.console.filter.threshold.level = warn",
            // OpenSearch warns at every start that a default it ships with is in effect.
            "logger.dangling.name = org.opensearch.gateway.DanglingIndicesState",
            "logger.dangling.level = error",
            "rootLogger.level = info",
            "rootLogger.appenderRef.file.ref = file",
            "rootLogger.appenderRef.console.ref = console",
            "");
        Files.writeString(configDir.resolve("log4j2.properties"), config);
    }

    /**
     * Ready means yellow or better: every primary shard is assigned, so every index is readable and
     * writable. Green is not required because a single node can never assign replicas.
     */
    private static void waitForHealth(int httpPort) throws InterruptedException {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        URI health = URI.create("http://127.0.0.1:" + httpPort + "/_cluster/health?wait_for_status=yellow&timeout=5s");
        while (true) {
            try {
                HttpResponse<String> response = client.send(
                    HttpRequest.newBuilder(health).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                String body = response.body().replace(" ", "");
                if (response.statusCode() == 200 && (body.contains("\"status\":\"green\"") || body.contains("\"status\":\"yellow\""))) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            }
            Thread.sleep(200);
        }
    }

    private static void watchParentProcess() {
        String parentPid = System.getProperty("farm.engine.parentPid");
        if (parentPid == null) {
            return;
        }
        ProcessHandle parent = ProcessHandle.of(Long.parseLong(parentPid)).orElse(null);
        Thread watcher = new Thread(() -> {
            if (parent != null) {
                parent.onExit().join();
            }
            System.exit(0); // runs the shutdown hook, which closes the node
        }, "farm-engine-parent-watch");
        watcher.setDaemon(true);
        watcher.start();
    }

    private static void closeNode(Object node) {
        try {
            invoke(node, "close");
            invoke(node, "awaitClose", 20L, TimeUnit.SECONDS);
        } catch (Exception e) {
            e.printStackTrace(new PrintStream(new FileOutputStream(FileDescriptor.err), true));
        }
    }

    private static boolean classExists(String name) {
        try {
            Class.forName(name, false, EngineMain.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    private static Object invoke(Object target, String name, Object... args) throws Exception {
        return call(target.getClass(), target, name, args);
    }

    private static Object invokeStatic(Class<?> type, String name, Object... args) throws Exception {
        return call(type, null, name, args);
    }

    /** Calls the public method of that name and arity whose parameters accept the arguments. */
    private static Object call(Class<?> type, Object target, String name, Object... args) throws Exception {
        for (Method method : type.getMethods()) {
            if (method.getName().equals(name) && method.getParameterCount() == args.length && accepts(method.getParameterTypes(), args)) {
                try {
                    return method.invoke(target, args);
                } catch (InvocationTargetException e) {
                    throw e.getCause() instanceof Exception cause ? cause : e;
                }
            }
        }
        throw new NoSuchMethodException(type.getName() + "." + name + " with " + args.length + " arguments");
    }

    private static boolean accepts(Class<?>[] types, Object[] args) {
        for (int i = 0; i < types.length; i++) {
            Class<?> type = types[i].isPrimitive() ? boxed(types[i]) : types[i];
            if (args[i] != null && !type.isInstance(args[i])) {
                return false;
            }
        }
        return true;
    }

    private static Class<?> boxed(Class<?> primitive) {
        return primitive == boolean.class ? Boolean.class : primitive == long.class ? Long.class : primitive == int.class ? Integer.class : primitive;
    }
}
