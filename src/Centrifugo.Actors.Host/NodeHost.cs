using Akka.Actor;
using Akka.Hosting;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>`run`: one node = the checked runtime (database, Centrifugo client) + the actor system + the admin endpoint.</summary>
internal static partial class NodeHost
{
    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken)
    {
        NodeOptions options;
        try
        {
            options = ConfigLoader.Load(configPath, Environment.GetEnvironmentVariables());
        }
        catch (ConfigException ex)
        {
            using var defaultFactory = CreateLoggerFactory(new LogOptions());
            LogConfigError(defaultFactory.CreateLogger("Centrifugo.Actors"), ex.Message);
            return 1;
        }

        var levelSwitch = new LogLevelSwitch(options.Log.Level);
        using var loggerFactory = CreateLoggerFactory(options.Log, levelSwitch);
        var logger = loggerFactory.CreateLogger("Centrifugo.Actors");

        NodeRuntime runtime;
        try
        {
            runtime = await NodeRuntime.StartAsync(options, loggerFactory, cancellationToken);
        }
        catch (Exception ex) when (ex is ConfigException or StartupException)
        {
            LogStartupError(logger, ex.Message);
            return 1;
        }

        await using (runtime)
        {
            var app = Build(runtime, loggerFactory, levelSwitch);
            await using (app)
            {
                try
                {
                    await app.StartAsync(cancellationToken);
                }
                catch (IOException ex)
                {
                    // Kestrel could not bind the admin address (port in use): say so instead of crashing with a trace.
                    LogStartupError(logger, $"admin endpoint {options.Admin.Address}: {ex.Message}");
                    using var stopBudget = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await app.StopAsync(stopBudget.Token);
                    return 1;
                }

                // Not app.RunAsync: it disposes the host (and its service provider) on its way out, so the shutdown
                // reason could no longer be read and every SIGTERM ended in ObjectDisposedException and exit code 1.
                var system = app.Services.GetRequiredService<ActorSystem>();
                await app.WaitForShutdownAsync(cancellationToken);
                var reason = CoordinatedShutdown.Get(system).ShutdownReason;
                if (reason is CoordinatedShutdown.ClusterDowningReason or CoordinatedShutdown.ClusterJoinUnsuccessfulReason)
                {
                    // Exit non-zero so Kubernetes restarts the pod and it joins again as a fresh member.
                    LogDowned(logger, reason.ToString()!);
                    return 2;
                }
            }
        }
        return 0;
    }

    /// <summary>How long SIGTERM may take: leave, hand-off of every partition (drain), exit. k8s grace period must exceed it.</summary>
    internal static TimeSpan ShutdownBudget => NodeRuntime.DrainTimeout + TimeSpan.FromSeconds(20);

    internal static WebApplication Build(NodeRuntime runtime, ILoggerFactory loggerFactory, LogLevelSwitch? levelSwitch = null)
    {
        var options = runtime.Options;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton(runtime.Board);
        builder.Services.AddSingleton(levelSwitch ?? new LogLevelSwitch(options.Log.Level));
        builder.Services.AddSingleton(_ => new OutboxBacklogs(runtime.Outbox.Values, loggerFactory));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownBudget);
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (options.Admin.Endpoint is { } endpoint)
            {
                k.Listen(endpoint);
            }
        });
        if (options.Admin.Address.Length == 0)
        {
            // No admin endpoint: keep Kestrel off any port.
            builder.WebHost.UseSetting(WebHostDefaults.ServerUrlsKey, "http://127.0.0.1:0");
        }

        builder.Services.AddAkka(options.Cluster.SystemName, (akka, _) =>
        {
            akka.AddSetup(new AkkaLogBridgeSetup(loggerFactory));
            akka.ConfigureLoggers(l =>
            {
                l.LogLevel = AkkaLogBridge.AkkaLevel(options.Log.Level);
                l.ClearLoggers();
                l.AddLogger<AkkaLogBridge>();
            });
            akka.WithCentrifugoActors(runtime);
        });

        var app = builder.Build();
        AdminEndpoint.Map(app);
        return app;
    }

    /// <summary>Console logging: one line per event (text, UTC time) or one JSON object per line (log.format json).</summary>
    internal static ILoggerFactory CreateLoggerFactory(LogOptions log, LogLevelSwitch? levelSwitch = null) => LoggerFactory.Create(b =>
    {
        if (levelSwitch is null)
        {
            b.SetMinimumLevel(log.Level);
        }
        else
        {
            b.SetMinimumLevel(LogLevel.Trace);
            b.AddFilter((_, _, level) => level >= levelSwitch.Level && levelSwitch.Level != LogLevel.None);
        }
        b.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        b.AddFilter("Microsoft.Hosting", LogLevel.Warning);
        // Npgsql logs every executed command at Information: one line per batch per partition.
        b.AddFilter("Npgsql.Command", LogLevel.Warning);
        // ... and "Starting to wait" at Information for every notification the LISTEN connection receives.
        b.AddFilter("Npgsql.Connection", LogLevel.Warning);
        if (log.Format == LogFormat.Json)
        {
            b.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.IncludeScopes = false;
            });
        }
        else
        {
            b.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }
    });

    [LoggerMessage(EventId = HostEventId.ConfigurationError, Level = LogLevel.Critical, Message = "Configuration error: {Error}")]
    private static partial void LogConfigError(ILogger logger, string error);

    [LoggerMessage(EventId = HostEventId.CannotStart, Level = LogLevel.Critical, Message = "Cannot start: {Error}")]
    private static partial void LogStartupError(ILogger logger, string error);

    [LoggerMessage(EventId = HostEventId.Downed, Level = LogLevel.Critical,
        Message = "This node was removed from the cluster ({Reason}); exiting so it can be restarted")]
    private static partial void LogDowned(ILogger logger, string reason);
}
