# Installation layout and the Debian package (CPack DEB): `cmake --build build --target package`
# or scripts/package.
include(GNUInstallDirs)

install(FILES ${PROJECT_SOURCE_DIR}/config/config.yaml DESTINATION /etc/graph2mqtt
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/graph2mqtt.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/config/mosquitto.conf ${PROJECT_SOURCE_DIR}/config/mosquitto.acl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/graph2mqtt)
# Man pages go in compressed (Debian policy §12.1: gzip -9n).
set(G2M_MAN_PAGE ${PROJECT_BINARY_DIR}/graph2mqtt.1.gz)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/packaging/graph2mqtt.1)
execute_process(COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/graph2mqtt.1
                OUTPUT_FILE ${G2M_MAN_PAGE} COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${G2M_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/mqtt-api.md
              ${PROJECT_SOURCE_DIR}/docs/operating.md ${PROJECT_SOURCE_DIR}/docs/faq.md
              ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} OPTIONAL)
# Debian's places for the licences and the package's changelog.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
set(G2M_DEBIAN_CHANGELOG ${PROJECT_BINARY_DIR}/changelog.Debian.gz)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/packaging/changelog)
execute_process(COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/changelog
                OUTPUT_FILE ${G2M_DEBIAN_CHANGELOG} COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${G2M_DEBIAN_CHANGELOG} DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The web display (display/web, built by scripts/package with npm: dist/ is not in git), served
# by Mosquitto's http_dir (config/mosquitto.conf). Source maps stay out; the licences of what
# the bundle contains (app.js.LEGAL.txt) go in.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/display/web/dist/ DESTINATION ${CMAKE_INSTALL_DATADIR}/graph2mqtt/web
        OPTIONAL PATTERN "*.map" EXCLUDE)
install(DIRECTORY DESTINATION /var/lib/graph2mqtt DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE
                                                                        OWNER_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME graph2mqtt)
set(CPACK_PACKAGE_VENDOR "graph2mqtt")
set(CPACK_PACKAGE_CONTACT "graph2mqtt maintainers <maintainers@graph2mqtt.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Microsoft 365 device sign-in and Graph data over MQTT")
set(CPACK_PACKAGE_DESCRIPTION
    "graph2mqtt lets TVs, e-ink panels, presence lights and kiosks sign in to Microsoft 365 with \
the OAuth 2.0 device flow through the MQTT broker on the gateway beside them, and publishes \
Microsoft Graph data (profile, presence, calendar) on a schedule.")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# Cross builds (packaging/toolchain.cmake) name the target architecture; else dpkg's own.
if(NOT CPACK_DEBIAN_PACKAGE_ARCHITECTURE AND G2M_DEB_ARCH)
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${G2M_DEB_ARCH})
endif()
# The runtime libraries it links (libpaho-mqttpp3-1, libcurl4, libyaml-cpp0.7, ...), found by
# dpkg-shlibdeps, plus what the maintainer scripts use.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto, mosquitto-clients")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/postinst;${PROJECT_SOURCE_DIR}/packaging/prerm;${PROJECT_SOURCE_DIR}/packaging/postrm;${PROJECT_SOURCE_DIR}/packaging/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
